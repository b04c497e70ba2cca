// The curve of issue 18: how the reaction to one drop, the CPU time of a resync pass and the
// idle resident set grow with the number of apps already running. One supervisor, as the package
// ships it (bench/bundle.ts), with the defaults of supervisor.toml except the paths, runs
// throughout. For each size (0, 100, 1 000, 5 000, up to --max-apps) apps.d is topped up with
// port-less apps (bench/apps.ts) until that many more run, then:
// - reaction: --drops single drops (bench/drops.ts), drop → CreateVm; the drops stay, so each
//   size also runs beside the earlier sizes' drops (`runningBeside` says how many ran);
// - resync: SIGHUP (as `systemctl reload`) --resyncs times, each the supervisor's CPU time from
//   the signal until it stays flat for a second: the full pass and every reconcile it queues;
// - idle: its resident set every 2 s over --idle-s seconds with nothing changing (70 s holds one
//   periodic resync, R = 60 s).
// Run: node_modules/.bin/node bench/curve.ts [--max-apps 5000] [--drops 50] [--resyncs 3] [--idle-s 70]
//      [--settle-ms 1000] [--bundle 1] [--flags 1]
import { performance } from 'node:perf_hooks';
import { openStage, type SupervisorChild } from '../test/soak/stage.ts';
import { waitUntil } from '../test/helpers/harness.ts';
import { portlessApps } from './apps.ts';
import { measureDrops, slowestDrops } from './drops.ts';
import { describeMachine, numberArgs, percentile, printResult, round, sampleProcess } from './report.ts';
import { shippedProgram } from './bundle.ts';

const SIZES = [0, 100, 1000, 5000];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// The supervisor's CPU time (ms) for one resync pass: from SIGHUP until its CPU time has not moved
// for a second (sampled every 100 ms; /proc counts in 10 ms ticks).
async function resyncCpuMs(child: SupervisorChild): Promise<number> {
  const start = (await sampleProcess(child.pid)).cpuMs;
  process.kill(child.pid, 'SIGHUP');
  let last = start;
  let flatSince = Date.now();
  while (Date.now() - flatSince < 1000) {
    await sleep(100);
    const now = (await sampleProcess(child.pid)).cpuMs;
    if (now !== last) flatSince = Date.now();
    last = now;
  }
  return last - start;
}

const args = numberArgs({ 'max-apps': 5000, drops: 50, resyncs: 3, 'idle-s': 70, 'settle-ms': 1000, bundle: 1, flags: 1 });
const machine = describeMachine();
const settleMs = args['settle-ms'];
const stage = await openStage({ apps: { settle_ms: settleMs }, prefix: 'bench-curve-' });
try {
  const program = await shippedProgram(args);
  const child = stage.spawn({ bin: program.bin, nodeArgs: program.nodeArgs });
  await child.ready;
  const readyAt = performance.now();
  const points: unknown[] = [];
  let background = 0;
  for (const size of SIZES.filter((s) => s <= args['max-apps'])) {
    const added = size - background;
    if (added > 0) {
      const running = (await stage.counts()).running ?? 0;
      await stage.dropAll(portlessApps(`bg${size}`, added));
      await waitUntil(async () => ((await stage.counts()).running ?? 0) >= running + added, `${size} background apps running`, 1_800_000);
      background = size;
      // The burst's last writes and reconciles are over before anything is measured.
      await sleep(5000);
    }
    const runningBeside = (await stage.counts()).running ?? 0;
    const droppedAt: number[] = [];
    const latencies = await measureDrops(stage, `drop${size}`, args.drops, settleMs, droppedAt);
    const resyncs: number[] = [];
    for (let i = 0; i < args.resyncs; i++) resyncs.push(await resyncCpuMs(child));
    const rss: number[] = [];
    const idleStart = Date.now();
    while (Date.now() - idleStart < args['idle-s'] * 1000) {
      rss.push((await sampleProcess(child.pid)).rssMB);
      await sleep(2000);
    }
    const p99 = percentile(latencies, 99);
    points.push({
      backgroundApps: size,
      runningBeside,
      dropToCreateVmMs: { p50: percentile(latencies, 50), p99, max: round(Math.max(...latencies)) },
      beyondSettleMs: { p50: round(percentile(latencies, 50) - settleMs), p99: round(p99 - settleMs) },
      slowest: slowestDrops(latencies, droppedAt, readyAt),
      resyncPassCpuMs: resyncs,
      idleRssMB: { max: Math.max(...rss), end: rss.at(-1) },
      // Issue 18's goals: Q + 100 ms beside 1 000 apps, Q + 200 ms beside 5 000.
      goalP99AtMostMs: size >= 5000 ? settleMs + 200 : settleMs + 100,
    });
  }
  await child.kill('SIGTERM');
  printResult('curve', machine, { settleWindowMs: settleMs, drops: args.drops, ...program.described, points });
} finally {
  await stage.close();
}
