// A drop meeting a resync (issue 18): beside N running apps, one app is dropped at each of several
// offsets from a resync (SIGHUP), so its settle window ends before, during and after the resync's
// reading and its pass; the time is drop → CreateVm, as in bench/reaction.ts, against drops with no
// resync near. Periodic resyncs are pushed out of the run (resync_s = 3600), so each drop meets
// only the one it is placed against. --profile 1 records one CPU profile over the drops that meet
// a resync (bench/profiles/resync-drop-<pid>.cpuprofile) and prints its top functions.
// Run: node_modules/.bin/node bench/resync-drop.ts [--background 1000] [--from=-1000] [--step 250]
//      [--count 13] [--alone 5] [--settle-ms 1000] [--profile 0] [--bundle 1] [--flags 1]
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { openStage, type Stage } from '../test/soak/stage.ts';
import { composeText, freePorts, waitUntil } from '../test/helpers/harness.ts';
import { deployBackground } from './apps.ts';
import { createVmReceived } from './drops.ts';
import { cpuUntilFlat, describeMachine, numberArgs, percentile, printResult, round, sampleProcess } from './report.ts';
import { shippedProgram } from './bundle.ts';
import { topFunctions, type CpuProfile } from './profile-top.ts';
import { openInspector } from './inspector.ts';

const args = numberArgs({ background: 1000, from: -1000, step: 250, count: 13, alone: 5, 'settle-ms': 1000, profile: 0, bundle: 1, flags: 1 });
const machine = describeMachine();
const settleMs = args['settle-ms'];
const apps = { settle_ms: settleMs, resync_s: 3600 };
const stage = await openStage({ apps, prefix: 'bench-resync-drop-' });

// Drop app `name` publishing `port`; `offsetMs` places a resync that long after the drop's start
// (negative: before it), or none. Resolves with drop → CreateVm in ms once the app runs and the
// supervisor's CPU is flat again (the resync over).
async function dropOnce(stage: Stage, pid: number, name: string, port: number, offsetMs: number | undefined): Promise<number> {
  const created = createVmReceived(stage, name, settleMs + 60_000);
  const cpuBefore = (await sampleProcess(pid)).cpuMs;
  if (offsetMs !== undefined && offsetMs <= 0) {
    process.kill(pid, 'SIGHUP');
    await sleep(-offsetMs);
  }
  await stage.drop(`${name}.yml`, composeText(port, name));
  const at = performance.now();
  if (offsetMs !== undefined && offsetMs > 0) {
    await sleep(offsetMs);
    process.kill(pid, 'SIGHUP');
  }
  const receivedAt = await created;
  await waitUntil(async () => (await stage.phase(name)) === 'running', `${name} running`, 60_000);
  await cpuUntilFlat(pid, cpuBefore, 30);
  return receivedAt - at;
}

try {
  if (args.background > 0) await deployBackground(stage, 'background', args.background, apps);
  // The profile is taken over the inspector, not with --cpu-prof for the whole run.
  const program = await shippedProgram({ bundle: args.bundle, flags: args.flags });
  const [inspectPort] = await freePorts(1);
  const inspect = args.profile ? [`--inspect=127.0.0.1:${inspectPort}`] : [];
  const child = stage.spawn({ bin: program.bin, nodeArgs: [...program.nodeArgs, ...inspect] });
  await child.ready;
  const ports = await freePorts(args.count + args.alone + 1);
  await dropOnce(stage, child.pid, 'warm-up', ports.pop() as number, undefined);
  const alone: number[] = [];
  for (let i = 0; i < args.alone; i++) alone.push(round(await dropOnce(stage, child.pid, `alone-${i}`, ports.pop() as number, undefined)));
  const inspector = args.profile ? await openInspector(inspectPort as number) : undefined;
  await inspector?.send('Profiler.enable');
  await inspector?.send('Profiler.start');
  // The resync's start relative to the drop; the drop's settle window ends settle-ms after it.
  const met: Array<{ resyncAfterDropMs: number; dropToCreateVmMs: number }> = [];
  for (let i = 0; i < args.count; i++) {
    const offset = args.from + i * args.step;
    met.push({ resyncAfterDropMs: offset, dropToCreateVmMs: round(await dropOnce(stage, child.pid, `meet-${i}`, ports.pop() as number, offset)) });
  }
  let profiled: Record<string, unknown> = {};
  if (inspector) {
    const { profile } = (await inspector.send('Profiler.stop')) as { profile: CpuProfile };
    const dir = join(import.meta.dirname, 'profiles');
    await mkdir(dir, { recursive: true });
    const file = join(dir, `resync-drop-${child.pid}.cpuprofile`);
    await writeFile(file, JSON.stringify(profile));
    inspector.close();
    profiled = { profile: { file, ...topFunctions(profile, 25) } };
  }
  await child.kill('SIGTERM');
  const latencies = met.map((m) => m.dropToCreateVmMs);
  printResult('resync-drop', machine, {
    backgroundApps: args.background,
    settleWindowMs: settleMs,
    ...program.described,
    aloneMs: alone,
    meetingResync: { max: Math.max(...latencies), p50: percentile(latencies, 50), drops: met },
    ...profiled,
  });
} finally {
  await stage.close();
}
