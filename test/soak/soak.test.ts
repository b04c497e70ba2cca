// The chaos soak, short and deterministic (one fixed seed, 200 ops), as part of `npm test`:
// editors, config management, bad files, NAME.env, hard links, hand edits of auth-config.json and
// of state records, VMM faults, VM crashes, a VMM restart and kill -9 of the supervisor, with every
// invariant checked at each convergence and over the VMM's call log. `npm run soak` runs long ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeFailure, runSoak } from './soak.ts';

test('chaos soak: 200 ops (seed 5) converge every time with all invariants holding', async () => {
  const report = await runSoak({ ops: 200, seed: Number(process.env.SOAK_SEED ?? 5), shrinkBudgetMs: 30_000 });
  assert.equal(report.failure, undefined, describeFailure(report));
  assert.ok(report.checks >= 5, `only ${report.checks} checks ran`);
  assert.ok(report.kills >= 3, `only ${report.kills} kills`);
  assert.ok(report.authReads > 0, 'the concurrent reader read auth-config.json');
  assert.ok(report.crossChecked > 0, 'the oracle\'s own manifest hash was compared with a running VM\'s');
});
