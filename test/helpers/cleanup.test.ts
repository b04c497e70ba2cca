import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defer } from './cleanup.ts';

// A stand-in for the test context that keeps the one hook defer registers, to run it by hand.
function fakeContext() {
  const hooks: Array<() => Promise<void>> = [];
  return { hooks, after: (fn: () => Promise<void>) => void hooks.push(fn) };
}

test('cleanup steps run last-in first-out, through one after hook', async () => {
  const ctx = fakeContext();
  const ran: string[] = [];
  defer(ctx, () => ran.push('remove temp dir'));
  defer(ctx, async () => void ran.push('stop server'));
  defer(ctx, () => ran.push('kill child'));
  assert.equal(ctx.hooks.length, 1);
  await ctx.hooks[0]!();
  assert.deepEqual(ran, ['kill child', 'stop server', 'remove temp dir']);
});

test('a failing step does not skip the steps after it, and its error is reported', async () => {
  const ctx = fakeContext();
  const ran: string[] = [];
  defer(ctx, () => ran.push('remove temp dir'));
  defer(ctx, () => {
    throw new Error('server would not stop');
  });
  defer(ctx, () => ran.push('kill child'));
  await assert.rejects(ctx.hooks[0]!(), /server would not stop/);
  assert.deepEqual(ran, ['kill child', 'remove temp dir']);
});

test('several failures are reported together', async () => {
  const ctx = fakeContext();
  defer(ctx, () => Promise.reject(new Error('one')));
  defer(ctx, () => Promise.reject(new Error('two')));
  await assert.rejects(ctx.hooks[0]!(), (err: AggregateError) => err.errors.length === 2 && /2 cleanup steps failed/.test(err.message));
});
