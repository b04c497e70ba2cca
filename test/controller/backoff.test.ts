import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBackoff, defaultBackoff } from '../../src/controller/backoff.ts';

test('rule 16: delays double from 5 s to a 5 min ceiling', () => {
  const b = createBackoff(defaultBackoff, () => 0.5);
  const delays = Array.from({ length: 9 }, () => b.fail('web', 'h1').delayMs);
  assert.deepEqual(delays, [5000, 10000, 20000, 40000, 80000, 160000, 300000, 300000, 300000]);
});

test('rule 16: jitter stays within ±20 %', () => {
  const low = createBackoff(defaultBackoff, () => 0).fail('a', 'h').delayMs;
  const high = createBackoff(defaultBackoff, () => 0.999999).fail('a', 'h').delayMs;
  assert.equal(low, 4000);
  assert.ok(high > 5900 && high <= 6000, String(high));
});

test('rule 16: a new hash cancels the backoff', () => {
  const b = createBackoff(defaultBackoff, () => 0.5);
  b.fail('web', 'h1');
  b.fail('web', 'h1');
  assert.equal(b.fail('web', 'h2').delayMs, 5000);
  b.reset('web');
  assert.equal(b.attempts('web'), 0);
});
