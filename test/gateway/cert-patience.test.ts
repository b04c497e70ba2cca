// Issue 14: a rate-limited certificate is asked for again less and less often, never faster.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { asked, freshPatience, shouldAsk } from '../../src/gateway/cert-patience.ts';

// The passes (1-based) at which the gateway is asked, over `passes` passes without a certificate.
function asks(passes: number, fails: boolean, first?: number): number[] {
  const p = freshPatience(first);
  const at: number[] = [];
  for (let pass = 1; pass <= passes; pass++) {
    if (!shouldAsk(p)) continue;
    at.push(pass);
    asked(p, fails);
  }
  return at;
}

test('an ask that fails doubles the wait before the next: 5, 10, 20 … passes, capped at 1 280', () => {
  assert.deepEqual(asks(200, true), [5, 15, 35, 75, 155]);
  const late = asks(20_000, true);
  const gaps = late.slice(1).map((at, i) => at - late[i]!);
  assert.deepEqual(gaps.slice(0, 9), [10, 20, 40, 80, 160, 320, 640, 1280, 1280]);
  assert.ok(gaps.every((g) => g <= 1280));
});

test('an accepted ask keeps asking every 5 passes', () => {
  assert.deepEqual(asks(22, false), [5, 10, 15, 20]);
});

test('after a new ACME directory or DNS token the first ask is at once, then the same doubling', () => {
  assert.deepEqual(asks(40, true, 1), [1, 3, 7, 15, 31]);
});
