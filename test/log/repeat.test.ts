import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/log/logger.ts';
import { createRepeatSummariser } from '../../src/log/repeat.ts';
import type { Decision } from '../../src/log/decision.ts';
import { collectLines } from './collect.ts';
import { createManualClock } from '../helpers/manual-clock.ts';

const T0 = Date.parse('2026-01-01T00:00:00Z');

function setup(maxQuietMs?: number) {
  const { stream, lines } = collectLines();
  const clock = createManualClock(T0);
  const summariser = createRepeatSummariser({ log: createLogger({ level: 'debug', stream }), clock, maxQuietMs });
  return { lines, clock, summariser };
}

const portTaken: Decision = { app: 'shop', file: 'shop.yaml', action: 'deploy', level: 'error', reason: 'port 8080 is taken' };

test('rule 22: identical errors are summarised with count and next retry, not repeated', async () => {
  const { lines, clock, summariser } = setup();
  for (let i = 0; i < 8; i++) {
    summariser.failure(portTaken, 5_000);
    await clock.advance(5_000);
  }
  assert.deepEqual(
    lines.map((l) => l.fields.REPEATED),
    [undefined, 2, 4, 8],
  );
  assert.ok(lines.every((l) => l.priority === 3 && l.fields.REASON === 'port 8080 is taken'));
  const second = lines[1]!.fields;
  assert.equal(second.NEXT_RETRY, new Date(T0 + 5_000 + 5_000).toISOString());
  assert.equal(second.SINCE, new Date(T0).toISOString());
  assert.match(String(second.msg), /\(2 times since 2026-01-01T00:00:00.000Z, next retry 2026-01-01T00:00:10.000Z\)$/);
});

test('a different message or another app is logged in full', () => {
  const { lines, summariser } = setup();
  summariser.failure(portTaken);
  summariser.failure({ ...portTaken, app: 'blog', file: 'blog.yaml' });
  summariser.failure({ ...portTaken, reason: 'VMM unreachable' });
  summariser.failure(portTaken);
  assert.deepEqual(
    lines.map((l) => [l.fields.APP, l.fields.REASON, l.fields.REPEATED]),
    [
      ['shop', 'port 8080 is taken', undefined],
      ['blog', 'port 8080 is taken', undefined],
      ['shop', 'VMM unreachable', undefined],
      ['shop', 'port 8080 is taken', undefined],
    ],
  );
});

test('a long streak still shows up once per quiet period', async () => {
  const { lines, clock, summariser } = setup(60_000);
  summariser.failure(portTaken, 30_000); // 1: full line
  await clock.advance(30_000);
  summariser.failure(portTaken, 30_000); // 2: power of two
  await clock.advance(30_000);
  summariser.failure(portTaken, 30_000); // 3: quiet for 30 s only
  await clock.advance(30_000);
  summariser.failure(portTaken, 30_000); // 4: power of two
  await clock.advance(60_000);
  summariser.failure(portTaken, 30_000); // 5: quiet for 60 s
  assert.deepEqual(
    lines.map((l) => l.fields.REPEATED),
    [undefined, 2, 4, 5],
  );
});

test('clear ends the streak and reports its length', () => {
  const { lines, summariser } = setup();
  summariser.failure(portTaken);
  summariser.failure(portTaken);
  summariser.failure(portTaken);
  assert.equal(summariser.clear('shop'), 3);
  assert.equal(summariser.clear('shop'), 0);
  summariser.failure(portTaken);
  assert.equal(lines.at(-1)!.fields.REPEATED, undefined);
  assert.equal(lines.length, 3);
});
