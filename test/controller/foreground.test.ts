import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createForeground } from '../../src/controller/foreground.ts';
import { createManualClock } from '../helpers/manual-clock.ts';
import { settledSoon } from '../helpers/harness.ts';

test('foreground: clear() waits while any foreground work is under way and resolves when the last ends', { timeout: 10_000 }, async () => {
  const clock = createManualClock();
  const fg = createForeground(clock, 1000);
  assert.equal(await settledSoon(fg.clear()), true, 'nothing under way: at once');
  const endPass = fg.enter();
  const endReconcile = fg.enter();
  assert.equal(fg.holding, true);
  const waiting = fg.clear();
  endPass();
  endPass();
  assert.equal(await settledSoon(waiting), false, 'one end called twice counts once; the reconcile is still under way');
  endReconcile();
  assert.equal(await settledSoon(waiting), true);
  assert.equal(fg.holding, false);
  assert.equal(clock.pending(), 0, 'the hold timer is cancelled');
});

test('foreground: it holds for at most the first maxHoldMs of a stretch of work, so work that does not end cannot starve a resync', { timeout: 10_000 }, async () => {
  const clock = createManualClock();
  const fg = createForeground(clock, 1000);
  const endFirst = fg.enter();
  await clock.advance(400);
  const endSecond = fg.enter();
  const waiting = fg.clear();
  endFirst();
  await clock.advance(599);
  assert.equal(await settledSoon(waiting), false, 'the stretch began 999 ms ago');
  await clock.advance(1);
  assert.equal(await settledSoon(waiting), true, 'a second after the stretch began, not after the second enter');
  assert.equal(fg.holding, false);
  assert.equal(await settledSoon(fg.clear()), true, 'later waits end at once while the same stretch goes on');
  endSecond();
  fg.enter();
  assert.equal(fg.holding, true, 'a new stretch holds again');
});
