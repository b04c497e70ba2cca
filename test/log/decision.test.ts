import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/log/logger.ts';
import { DECISION_ACTIONS, decisionLevel, logDecision, type DecisionAction } from '../../src/log/decision.ts';
import { collectLines } from './collect.ts';

const OLD = 'a'.repeat(64);
const NEW = 'b'.repeat(12) + 'c'.repeat(52);

test('rule 22: a decision is one line with APP, FILE, ACTION, FROM/TO prefixes and REASON', () => {
  const { stream, lines } = collectLines();
  const log = createLogger({ level: 'debug', stream });
  logDecision(log, { app: 'shop', file: '/etc/dstack/apps.d/shop.yaml', action: 'upgrade', from: OLD, to: NEW, reason: 'content changed' });
  assert.equal(lines.length, 1);
  const { priority, fields } = lines[0]!;
  assert.equal(priority, 6);
  assert.equal(fields.APP, 'shop');
  assert.equal(fields.FILE, '/etc/dstack/apps.d/shop.yaml');
  assert.equal(fields.ACTION, 'upgrade');
  assert.equal(fields.FROM, 'aaaaaaaaaaaa');
  assert.equal(fields.TO, 'bbbbbbbbbbbb');
  assert.equal(fields.REASON, 'content changed');
  assert.equal(fields.msg, 'shop: upgrade aaaaaaaaaaaa -> bbbbbbbbbbbb: content changed');
});

test('rule 22: journalctl -p warning shows only the problem actions', () => {
  const { stream, lines } = collectLines();
  const log = createLogger({ level: 'debug', stream });
  for (const action of DECISION_ACTIONS) logDecision(log, { app: 'a', file: 'a.yaml', action, reason: action });
  const warningOrWorse = lines.filter((l) => l.priority <= 4).map((l) => l.fields.ACTION);
  assert.deepEqual(warningOrWorse, ['invalid', 'conflict', 'refused', 'repair']);
  const byAction = Object.fromEntries(lines.map((l) => [l.fields.ACTION, l.priority]));
  assert.deepEqual(byAction, { deploy: 6, upgrade: 6, teardown: 6, noop: 7, invalid: 4, conflict: 4, refused: 4, repair: 4 });
});

test('a failed operation is raised to error; a problem is never lowered', () => {
  const table: Array<[DecisionAction, 'error' | 'debug', string]> = [
    ['deploy', 'error', 'error'],
    ['refused', 'debug', 'warn'],
    ['noop', 'debug', 'debug'],
  ];
  for (const [action, level, expected] of table) assert.equal(decisionLevel({ action, level }), expected, action);
});

test('absent hashes leave FROM and TO out of the line', () => {
  const { stream, lines } = collectLines();
  logDecision(createLogger({ level: 'info', stream }), { app: 'blog', file: 'blog.yml', action: 'deploy', to: NEW, reason: 'new file' });
  assert.equal('FROM' in lines[0]!.fields, false);
  assert.equal(lines[0]!.fields.msg, 'blog: deploy bbbbbbbbbbbb: new file');
});
