import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countPhases, formatStatusLine } from '../../src/status/summary.ts';
import { PHASES, type Phase } from '../../src/status/phase.ts';

function counts(phases: Phase[]) {
  return countPhases(phases.map((phase) => ({ phase })));
}

test('every phase is counted, empty ones as 0', () => {
  const result = counts(['running', 'running', 'failed']);
  assert.deepEqual(Object.keys(result), [...PHASES]);
  assert.equal(result.running, 2);
  assert.equal(result.failed, 1);
  assert.equal(result.pending, 0);
});

test('rule 21: STATUS= names running, pending, invalid and failed, then busy phases that are not empty', () => {
  const table: Array<[Phase[], boolean, string]> = [
    [[], false, 'running 0, pending 0, invalid 0, failed 0'],
    [['running', 'running', 'running', 'pending'], false, 'running 3, pending 1, invalid 0, failed 0'],
    [['running', 'deploying', 'removing', 'invalid'], false, 'running 1, pending 0, invalid 1, failed 0, deploying 1, removing 1'],
    [['running'], true, 'running 1, pending 0, invalid 0, failed 0; watcher degraded'],
  ];
  for (const [phases, watcherDegraded, expected] of table) {
    assert.equal(formatStatusLine(counts(phases), { watcherDegraded }), expected);
  }
});
