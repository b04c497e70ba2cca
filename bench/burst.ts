// Burst: 1000 compose files appear in apps.d at once → time until every CreateVm has reached the
// (simulated) VMM, and how many times auth-config.json was replaced meanwhile and until every app
// runs. Goals: all CreateVm within 10 s, at most 20 allowlist writes.
// The apps publish no ports (a thousand real listeners would measure the simulator, not us);
// port planning still runs over them. Files are written as hidden temps, then renamed in one go;
// the clock starts at the first rename.
// `--concurrency` sets [apps] concurrency (N, default 4) to show how the figures depend on it.
// The supervisor runs as the package ships it (bench/bundle.ts; --bundle 0 runs the sources,
// --flags 0 leaves packaging/files/node-flags out).
// Run: node_modules/.bin/node bench/burst.ts [--apps 1000] [--concurrency 4] [--timeout-s 900] [--profile 1] [--bundle 1] [--flags 1]
import { performance } from 'node:perf_hooks';
import { openStage } from '../test/soak/stage.ts';
import { portlessApps } from './apps.ts';
import { startAuthReader } from '../test/soak/auth-reader.ts';
import { waitUntil } from '../test/helpers/harness.ts';
import { describeMachine, numberArgs, printResult, round } from './report.ts';
import { shippedProgram } from './bundle.ts';

const args = numberArgs({ apps: 1000, 'timeout-s': 900, profile: 0, concurrency: 4, bundle: 1, flags: 1 });
const machine = describeMachine();
const stage = await openStage({ apps: { concurrency: args.concurrency }, prefix: 'bench-burst-' });
const reader = startAuthReader(stage.authPath);
try {
  const program = await shippedProgram(args);
  const child = stage.spawn({ bin: program.bin, nodeArgs: program.nodeArgs });
  await child.ready;
  const writesBefore = reader.stats().writes;
  const createVms = () => stage.sim.faults.calls().filter((c) => c === 'CreateVm').length;
  const started = await stage.dropAll(portlessApps('burst', args.apps));
  const renamedMs = performance.now() - started;
  const timeoutMs = args['timeout-s'] * 1000;
  await waitUntil(() => createVms() >= args.apps, `${args.apps} CreateVm`, timeoutMs);
  const allCreatedMs = performance.now() - started;
  const writesAtCreated = reader.stats().writes - writesBefore;
  await waitUntil(async () => ((await stage.counts()).running ?? 0) >= args.apps, `${args.apps} apps running`, timeoutMs);
  const allRunningMs = performance.now() - started;
  await child.kill('SIGTERM');
  const writes = reader.stats().writes - writesBefore;
  printResult('burst', machine, {
    apps: args.apps,
    concurrency: args.concurrency,
    ...program.described,
    renameAllMs: round(renamedMs),
    allCreateVmSentMs: round(allCreatedMs),
    allRunningMs: round(allRunningMs),
    authConfigWrites: { untilAllCreateVm: writesAtCreated, untilAllRunning: writes },
    invalidAuthReads: reader.stats().invalid.length,
    goal: {
      allCreateVmWithinMs: 10_000,
      writesAtMost: 20,
      met: allCreatedMs <= 10_000 && writes <= 20,
    },
  });
} finally {
  await reader.close();
  await stage.close();
}
