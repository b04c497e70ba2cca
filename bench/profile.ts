// CPU profiles of the supervisor beside many running apps (issue 18): (a) one resync pass
// (SIGHUP, until its CPU time stays flat for a second) and (b) a series of single drops. The
// supervisor runs with the inspector on a loopback port; each phase is one Profiler.start/stop
// over it, so start-up is in neither profile. Writes bench/profiles/{resync,drops}-<pid>.cpuprofile
// and prints the top functions by self and by total time of each.
// Run: node_modules/.bin/node bench/profile.ts [--background 5000] [--drops 20] [--resyncs 1]
//      [--settle-ms 1000] [--bundle 0] [--flags 1]
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openStage } from '../test/soak/stage.ts';
import { composeText, freePorts, waitUntil } from '../test/helpers/harness.ts';
import { deployBackground } from './apps.ts';
import { measureDrops, slowestDrops } from './drops.ts';
import { cpuUntilFlat, describeMachine, numberArgs, percentile, printResult, sampleProcess } from './report.ts';
import { shippedProgram } from './bundle.ts';
import { profileWindow, topFunctions, type CpuProfile } from './profile-top.ts';
import { openInspector } from './inspector.ts';

const args = numberArgs({ background: 5000, drops: 20, resyncs: 1, 'settle-ms': 1000, bundle: 0, flags: 1 });
const machine = describeMachine();
const settleMs = args['settle-ms'];
const stage = await openStage({ apps: { settle_ms: settleMs }, prefix: 'bench-profile-' });
try {
  if (args.background > 0) await deployBackground(stage, 'background', args.background, { settle_ms: settleMs });
  const program = await shippedProgram(args);
  const [inspectPort] = await freePorts(1);
  const child = stage.spawn({ bin: program.bin, nodeArgs: [...program.nodeArgs, `--inspect=127.0.0.1:${inspectPort}`] });
  await child.ready;
  const readyAt = performance.now();
  await stage.drop('warm-up.yml', composeText((await freePorts(1))[0] as number, 'warm-up'));
  await waitUntil(async () => (await stage.phase('warm-up')) === 'running', 'the warm-up app running', 600_000);
  await cpuUntilFlat(child.pid, (await sampleProcess(child.pid)).cpuMs, 30);
  const inspector = await openInspector(inspectPort as number);
  await inspector.send('Profiler.enable');
  const dir = join(import.meta.dirname, 'profiles');
  await mkdir(dir, { recursive: true });
  const phases: Record<string, unknown> = {};
  // The three slowest drops, each with what the supervisor ran from 100 ms before its settle window
  // ended until its CreateVm (the profile is taken once the phase ends, so they are filled in then).
  let windows: (profile: CpuProfile) => Record<string, unknown> = () => ({});
  const slowestWithWindows = (latencies: number[], droppedAt: number[]) => {
    const toMonotonicUs = (ms: number) => (ms - performance.now()) * 1000 + Number(process.hrtime.bigint() / 1000n);
    const picked = slowestDrops(latencies, droppedAt, readyAt);
    windows = (profile) => ({
      slowest: picked.map(({ drop, ms }) => {
        const at = toMonotonicUs(droppedAt[drop] as number);
        const { sampledMs, self, total } = topFunctions(profileWindow(profile, at + (settleMs - 100) * 1000, at + ms * 1000), 12);
        return { drop, ms, sampledMs, self, total };
      }),
    });
    return picked;
  };
  const profiled = async (name: string, run: () => Promise<Record<string, unknown>>) => {
    await inspector.send('Profiler.start');
    const figures = await run();
    const { profile } = (await inspector.send('Profiler.stop')) as { profile: CpuProfile };
    const file = join(dir, `${name}-${child.pid}.cpuprofile`);
    await writeFile(file, JSON.stringify(profile));
    phases[name] = { ...figures, file, ...topFunctions(profile, 25), ...windows(profile) };
    windows = () => ({});
  };
  await profiled('resync', async () => {
    const cpuMs: number[] = [];
    for (let i = 0; i < args.resyncs; i++) {
      const start = (await sampleProcess(child.pid)).cpuMs;
      process.kill(child.pid, 'SIGHUP');
      cpuMs.push(await cpuUntilFlat(child.pid, start, 30));
    }
    return { cpuMs };
  });
  await profiled('drops', async () => {
    const droppedAt: number[] = [];
    const latencies = await measureDrops(stage, 'drop', args.drops, settleMs, droppedAt);
    return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), slowest: slowestWithWindows(latencies, droppedAt) };
  });
  inspector.close();
  await child.kill('SIGTERM');
  printResult('profile', machine, { backgroundApps: args.background, ...program.described, phases });
} finally {
  await stage.close();
}
