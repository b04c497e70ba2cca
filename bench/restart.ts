// Restart: the supervisor is restarted (SIGTERM, start again, as `systemctl restart` does) over
// 1000 running apps whose files did not change → time from spawn to READY (node start-up
// included), time until every app has been reconciled, and the mutating RPCs sent meanwhile.
// Goals: READY within 3 s, 0 mutating RPCs (and the same VM ids).
// Set-up deploys the apps with [apps] concurrency = 64 so it takes seconds, not minutes; the
// measured start uses the default N = 4. The apps publish no ports (see bench/apps.ts).
// The restarted supervisor runs as the package ships it (--bundle 1 --flags 1, as in bench/idle.ts).
// Run: node_modules/.bin/node bench/restart.ts [--apps 1000] [--profile 1] [--bundle 1] [--flags 1]
import { performance } from 'node:perf_hooks';
import { openStage } from '../test/soak/stage.ts';
import { waitUntil } from '../test/helpers/harness.ts';
import { deployBackground } from './apps.ts';
import { describeMachine, numberArgs, printResult, round } from './report.ts';
import { shippedProgram } from './bundle.ts';

const MUTATING = new Set(['CreateVm', 'UpdateVm', 'StartVm', 'StopVm', 'ShutdownVm', 'RemoveVm']);

const args = numberArgs({ apps: 1000, profile: 0, bundle: 1, flags: 1 });
const machine = describeMachine();
const stage = await openStage({ prefix: 'bench-restart-' });
try {
  await deployBackground(stage, 'restart', args.apps);

  const callsBefore = stage.sim.faults.calls().length;
  const vmIdsBefore = stage.sim.state.list().map((v) => v.id).sort().join();
  const program = await shippedProgram(args);
  // At debug level every reconcile logs its decision: once each app has logged one, the restart
  // has been fully reconciled (the first pass only sees the files; they settle Q later).
  const reconciled = new Set<string>();
  let reconciledAt = 0;
  const spawnedAt = performance.now();
  const second = stage.spawn({
    bin: program.bin,
    nodeArgs: program.nodeArgs,
    env: { DSTACK_SUPERVISOR_LOG_LEVEL: 'debug' },
    onLine: (line) => {
      // A decision naming a target hash (TO) was taken on settled content, not a held first look.
      const app = /"APP":"([^"]+)","FILE":"[^"]*","ACTION":"[^"]+"(,"FROM":"[^"]*")?,"TO":"/.exec(line)?.[1];
      if (app === undefined || reconciled.has(app)) return;
      reconciled.add(app);
      if (reconciled.size === args.apps) reconciledAt = performance.now();
    },
  });
  const readyAt = await second.ready;
  const readyCounts = await stage.counts();
  await waitUntil(() => reconciledAt > 0, `a decision for each of ${args.apps} apps`, 600_000);
  // Anything still in flight after the last decision (there should be nothing) lands meanwhile.
  await new Promise((r) => setTimeout(r, 2000));
  await second.kill('SIGTERM');
  const calls = stage.sim.faults.calls().slice(callsBefore);
  const mutating = calls.filter((c) => MUTATING.has(c));
  const byMethod = Object.fromEntries([...new Set(calls)].map((m) => [m, calls.filter((c) => c === m).length]));
  const sameVms = stage.sim.state.list().map((v) => v.id).sort().join() === vmIdsBefore;
  const readyMs = readyAt - spawnedAt;
  printResult('restart', machine, {
    apps: args.apps,
    ...program.described,
    spawnToReadyMs: round(readyMs),
    spawnToAllReconciledMs: round(reconciledAt - spawnedAt),
    runningAtReady: readyCounts.running ?? 0,
    mutatingRpcs: mutating.length,
    rpcsByMethod: byMethod,
    sameVmIds: sameVms,
    goal: { readyWithinMs: 3000, mutatingRpcs: 0, met: readyMs <= 3000 && mutating.length === 0 && sameVms },
  });
} finally {
  await stage.close();
}
