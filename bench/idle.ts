// Idle: 100 running apps, nothing changes, for 5 minutes → the supervisor's resident set and CPU
// time over that window, and every timer callback it ran (bench/timer-probe.mjs, preloaded).
// Goals: RSS ≤ 70 MB; no timer faster than the resync period R, i.e. the process wakes up only in
// one burst per resync pass. Defaults of supervisor.toml (R = 60 s) except the paths; each app
// publishes one real port (a free one), so the simulator holds 100 listeners, as a host would.
// The supervisor runs as the package ships it (the esbuild bundle on plain Node 24 with the flags
// of packaging/files/node-flags, --bundle 1 --flags 1); --bundle 0 runs the TypeScript sources
// through Node's type stripping instead, --flags 0 leaves the flags out (of the bundle's run; the
// npm bin adds them to the sources' itself). A bare Node process idling beside it gives the
// floor every Node service starts from.
// --journal 1 runs it with `--log-format journal`, as under systemd: the journal's addon is loaded
// and each entry goes to journald's socket (where there is no journald, as on the bench machine,
// each falls back to a stdout line after the failed send).
// Run: node_modules/.bin/node bench/idle.ts [--apps 100] [--minutes 5] [--bundle 1] [--flags 1] [--journal 0]
// (shorter for a quick look; README quotes the 5-minute figure)
import { spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { openStage } from '../test/soak/stage.ts';
import { composeText, freePorts, waitUntil } from '../test/helpers/harness.ts';
import { describeMachine, numberArgs, printResult, round, sampleProcess } from './report.ts';
import { shippedProgram } from './bundle.ts';

// Timer callbacks closer together than this belong to one wake-up: a resync pass and what it
// leaves behind (the VMM connection's 4 s keep-alive close after it, src/vmm/transport.ts).
const BURST_GAP_MS = 5000;
// How long after the deploys the window starts, so their connections have closed.
const QUIET_MS = 10_000;
const RSS_SAMPLE_MS = 5000;
const RESYNC_MS = 60_000;

type Fire = { at: number; delayMs: number; repeat: boolean };
type ProbeDump = { fires: Fire[]; memory: NodeJS.MemoryUsage; heapSpaces: Record<string, number> };

const MB = (bytes: number) => round(bytes / 2 ** 20);

// The resident set of a Node process that loads nothing and waits.
async function bareNodeRss(): Promise<{ rssMB: number; anonMB: number; fileMB: number }> {
  const bare = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 1000));
    const { rssMB, anonMB, fileMB } = await sampleProcess(bare.pid ?? -1);
    return { rssMB, anonMB, fileMB };
  } finally {
    bare.kill();
  }
}

// Group timer callbacks into wake-ups: runs of callbacks with gaps under BURST_GAP_MS.
function wakeups(fires: readonly Fire[]): Array<{ at: number; fires: number }> {
  const bursts: Array<{ at: number; last: number; fires: number }> = [];
  for (const f of fires) {
    const last = bursts.at(-1);
    if (last && f.at - last.last < BURST_GAP_MS) {
      last.last = f.at;
      last.fires += 1;
    } else bursts.push({ at: f.at, last: f.at, fires: 1 });
  }
  return bursts.map(({ at, fires: n }) => ({ at, fires: n }));
}

const args = numberArgs({ apps: 100, minutes: 5, bundle: 1, flags: 1, journal: 0 });
const machine = describeMachine();
const stage = await openStage({ prefix: 'bench-idle-' });
const probeOut = join(stage.dir, 'timers.json');
try {
  const { bin, nodeArgs, described } = await shippedProgram(args);
  const child = stage.spawn({
    bin,
    nodeArgs: [...nodeArgs, '--import', join(import.meta.dirname, 'timer-probe.mjs')],
    env: { BENCH_TIMER_PROBE_OUT: probeOut },
    logFormat: args.journal ? 'journal' : 'text',
  });
  await child.ready;
  const ports = await freePorts(args.apps);
  await stage.dropAll(ports.map((port, i) => [`idle-${i}.yml`, composeText(port, `idle ${i}`)] as const));
  await waitUntil(async () => ((await stage.counts()).running ?? 0) >= args.apps, `${args.apps} apps running`, 600_000);

  await new Promise((r) => setTimeout(r, QUIET_MS));
  const windowMs = args.minutes * 60_000;
  const callsBefore = stage.sim.faults.calls().length;
  const windowStart = Date.now();
  const before = await sampleProcess(child.pid);
  const rss: number[] = [before.rssMB];
  while (Date.now() - windowStart < windowMs) {
    await new Promise((r) => setTimeout(r, Math.min(RSS_SAMPLE_MS, windowMs - (Date.now() - windowStart))));
    rss.push((await sampleProcess(child.pid)).rssMB);
  }
  const after = await sampleProcess(child.pid);
  await rm(probeOut, { force: true });
  process.kill(child.pid, 'SIGUSR2');
  const dump = await waitUntil(() => readFile(probeOut, 'utf8').then((t) => JSON.parse(t) as ProbeDump, () => undefined), 'timer probe dump');
  const fires = dump.fires.filter((f) => f.at >= windowStart && f.at <= windowStart + windowMs);
  await child.kill('SIGTERM');

  const bursts = wakeups(fires);
  const gaps = bursts.slice(1).map((b, i) => b.at - (bursts[i]?.at ?? 0));
  const delays: Record<string, number> = {};
  for (const f of fires) {
    const key = `${f.delayMs}${f.repeat ? ' (interval)' : ''}`;
    delays[key] = (delays[key] ?? 0) + 1;
  }
  const calls = stage.sim.faults.calls().slice(callsBefore);
  const maxRss = Math.max(...rss);
  const resyncPasses = Math.floor(windowMs / RESYNC_MS);
  const minGap = gaps.length > 0 ? Math.min(...gaps) : null;
  const timersOk = bursts.length <= resyncPasses + 1 && (minGap === null || minGap >= RESYNC_MS * 0.9);
  printResult('idle', machine, {
    apps: args.apps,
    windowS: windowMs / 1000,
    ...described,
    logFormat: args.journal ? 'journal' : 'text',
    rssMB: { start: before.rssMB, end: after.rssMB, max: maxRss, peakSinceStart: after.peakRssMB },
    // The end's resident set in its two parts, beside a bare Node process's.
    residentEndMB: { anon: after.anonMB, file: after.fileMB },
    bareNodeMB: await bareNodeRss(),
    // What the resident set holds at the end (process.memoryUsage(), MB).
    memoryMB: Object.fromEntries(Object.entries(dump.memory).map(([k, v]) => [k, MB(v)])),
    heapSpacesUsedMB: Object.fromEntries(Object.entries(dump.heapSpaces).map(([k, v]) => [k, MB(v)])),
    cpuMs: after.cpuMs - before.cpuMs,
    cpuPercent: Number((((after.cpuMs - before.cpuMs) / windowMs) * 100).toFixed(3)),
    vmmCalls: calls.length,
    timers: { fires: fires.length, wakeups: bursts.length, minGapBetweenWakeupsMs: minGap, firesByDelayMs: delays },
    goal: { rssAtMostMB: 70, wakeupsAtMost: resyncPasses + 1, met: maxRss <= 70 && timersOk },
  });
} finally {
  await stage.close();
}
