import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createWorkQueue, type ReconcileResult } from '../../src/controller/workqueue.ts';
import { createManualClock } from '../helpers/manual-clock.ts';
import { createForeground } from '../../src/controller/foreground.ts';

function deferred<T = void>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

test('rule 14: adds while a key runs coalesce into exactly one follow-up', async () => {
  const clock = createManualClock();
  const gate = deferred();
  const started = deferred();
  const runs: string[] = [];
  const q = createWorkQueue({
    concurrency: 4,
    clock,
    retryDelay: () => 1000,
    async process(key) {
      runs.push(key);
      started.resolve();
      if (runs.length === 1) await gate.promise;
      return { kind: 'done' };
    },
  });
  q.add('web');
  await started.promise;
  for (let i = 0; i < 10; i++) q.add('web');
  gate.resolve();
  await q.idle();
  assert.deepEqual(runs, ['web', 'web']);
});

test('rule 15: a hung key does not hold back others beyond the slot it takes', async () => {
  const clock = createManualClock();
  const hang = deferred();
  const done: string[] = [];
  const q = createWorkQueue({
    concurrency: 2,
    clock,
    retryDelay: () => 1000,
    async process(key) {
      if (key === 'stuck') await hang.promise;
      done.push(key);
      return { kind: 'done' };
    },
  });
  q.add('stuck');
  for (const k of ['a', 'b', 'c']) q.add(k);
  await new Promise<void>((resolve) => {
    const check = () => (done.length === 3 ? resolve() : setImmediate(check));
    check();
  });
  assert.deepEqual(done, ['a', 'b', 'c']);
  assert.equal(q.running, 1);
  hang.resolve();
  await q.idle();
});

test('failures retry after the delay the backoff policy gives, not at once', async () => {
  const clock = createManualClock();
  const results: ReconcileResult[] = [];
  let calls = 0;
  const q = createWorkQueue({
    concurrency: 1,
    clock,
    retryDelay: () => 5000,
    async process() {
      calls++;
      return calls < 3 ? { kind: 'retry', error: new Error('boom') } : { kind: 'done' };
    },
    onResult: (_k, r) => results.push(r),
  });
  q.add('x');
  await q.idle();
  assert.equal(calls, 1);
  await clock.advance(4999);
  assert.equal(calls, 1);
  await clock.advance(1);
  await q.idle();
  assert.equal(calls, 2);
  await clock.advance(5000);
  await q.idle();
  assert.equal(calls, 3);
  assert.deepEqual(results.map((r) => r.kind), ['retry', 'retry', 'done']);
  assert.equal(clock.pending(), 0);
});

test('an explicit add cancels a pending delayed retry', async () => {
  const clock = createManualClock();
  let calls = 0;
  const q = createWorkQueue({
    concurrency: 1,
    clock,
    retryDelay: () => 60_000,
    async process() {
      calls++;
      return calls === 1 ? { kind: 'retry', error: new Error('x') } : { kind: 'done' };
    },
  });
  q.add('x');
  await q.idle();
  q.add('x');
  await q.idle();
  assert.equal(calls, 2);
  assert.equal(clock.pending(), 0);
});

test('stop waits for running work and drops the rest', async () => {
  const clock = createManualClock();
  const gate = deferred();
  const started = deferred();
  const seen: string[] = [];
  const q = createWorkQueue({
    concurrency: 1,
    clock,
    retryDelay: () => 1,
    async process(key) {
      seen.push(key);
      started.resolve();
      await gate.promise;
      return { kind: 'requeueAfter', ms: 10 };
    },
  });
  q.add('a');
  q.add('b');
  await started.promise;
  const stopping = q.stop();
  gate.resolve();
  await stopping;
  assert.deepEqual(seen, ['a']);
  assert.equal(clock.pending(), 0);
});

test('rule 16: a key asked for while its failing run is in flight still waits out the backoff', async () => {
  const clock = createManualClock();
  const gate = deferred();
  let calls = 0;
  const q = createWorkQueue({
    concurrency: 1,
    clock,
    retryDelay: () => 5000,
    async process() {
      calls++;
      if (calls === 1) await gate.promise;
      return { kind: 'retry', error: new Error('still failing') };
    },
  });
  q.add('x');
  q.add('x');
  gate.resolve();
  await q.idle();
  assert.equal(calls, 1, 'no immediate rerun');
  await clock.advance(5000);
  await q.idle();
  assert.equal(calls, 2);
  await q.stop();
});

test('prepare sees every ready key in one batch before any runs, beyond the concurrency', async () => {
  const clock = createManualClock();
  const events: string[] = [];
  const batches: string[][] = [];
  const q = createWorkQueue({
    concurrency: 1,
    clock,
    retryDelay: () => 1000,
    async prepare(keys) {
      batches.push([...keys]);
      events.push('prepared');
    },
    async process(key) {
      events.push(key);
      return { kind: 'done' };
    },
  });
  for (const key of ['a', 'b', 'c']) q.add(key);
  await q.idle();
  assert.deepEqual(batches, [['a', 'b', 'c']]);
  assert.deepEqual(events, ['prepared', 'a', 'b', 'c']);
});

test('a key asked for again by a routine pass (a resync) while it is being prepared runs, then once more; a failed prepare still runs the keys', async () => {
  const clock = createManualClock();
  const gate = deferred();
  const runs: string[] = [];
  let prepares = 0;
  const q = createWorkQueue({
    concurrency: 2,
    clock,
    retryDelay: () => 1000,
    async prepare() {
      prepares += 1;
      if (prepares === 1) await gate.promise;
      throw new Error('allowlist missing');
    },
    async process(key) {
      runs.push(key);
      return { kind: 'done' };
    },
  });
  q.add('web');
  await Promise.resolve();
  q.add('web');
  assert.equal(q.running, 1, 'a key being prepared counts as running');
  gate.resolve();
  await q.idle();
  assert.deepEqual(runs, ['web', 'web']);
  assert.equal(prepares, 2);
});

test('stop during prepare runs none of the batch and settles idle', async () => {
  const clock = createManualClock();
  const gate = deferred();
  const runs: string[] = [];
  const q = createWorkQueue({
    concurrency: 2,
    clock,
    retryDelay: () => 1000,
    prepare: () => gate.promise,
    async process(key) {
      runs.push(key);
      return { kind: 'done' };
    },
  });
  q.add('a');
  const stopped = q.stop();
  gate.resolve();
  await stopped;
  await q.idle();
  assert.deepEqual(runs, []);
  assert.equal(q.running, 0);
});

// A burst wrote auth-config.json 39 and 71 times instead of twice: a pass found some files settled
// and others new (held as unsettled), all prepared in one batch; while its hashes were registered
// (1.6 s), the next pass found the new ones settled. Asked for again mid-prepare, they ran without
// being prepared for that, and each deploy registered its own hash.
test('issue 18: a key asked for as changed before it starts, while being prepared or waiting for a slot, is prepared again for what it is asked now, and runs once', async () => {
  const clock = createManualClock();
  const preparing = deferred();
  const gate = deferred();
  const running = deferred();
  const release = deferred();
  // What each key is asked for now (its verdict), and what its last prepare saw.
  const wanted = new Map([
    ['a', 'app'],
    ['b', 'hold'],
    ['c', 'hold'],
  ]);
  const preparedFor = new Map<string, string | undefined>();
  const batches: string[][] = [];
  const runs: string[] = [];
  const q = createWorkQueue({
    concurrency: 1,
    clock,
    retryDelay: () => 1000,
    async prepare(keys) {
      batches.push([...keys]);
      const seen = keys.map((key) => [key, wanted.get(key)] as const);
      if (batches.length === 1) {
        preparing.resolve();
        await gate.promise;
      }
      for (const [key, verdict] of seen) preparedFor.set(key, verdict);
    },
    async process(key) {
      runs.push(`${key}: ${wanted.get(key)}, prepared for ${preparedFor.get(key)}`);
      if (key === 'a') {
        running.resolve();
        await release.promise;
      }
      return { kind: 'done' };
    },
  });
  for (const key of ['a', 'b', 'c']) q.add(key, 'changed');
  await preparing.promise;
  wanted.set('b', 'app');
  q.add('b', 'changed');
  assert.equal(q.running, 3, 'keys being prepared count as running');
  gate.resolve();
  await running.promise;
  // 'c' waits for the slot 'a' holds.
  wanted.set('c', 'app');
  q.add('c', 'changed');
  release.resolve();
  await q.idle();
  assert.deepEqual(batches, [['a', 'b', 'c'], ['b'], ['c']]);
  assert.deepEqual(runs, ['a: app, prepared for app', 'b: app, prepared for app', 'c: app, prepared for app']);
});

test('issue 18: a changed key runs before the routine keys a resync queued ahead of it', async () => {
  const clock = createManualClock();
  const gate = deferred();
  const started = deferred();
  const runs: string[] = [];
  const q = createWorkQueue({
    concurrency: 1,
    clock,
    retryDelay: () => 1000,
    async process(key) {
      runs.push(key);
      started.resolve();
      if (key === 'first') await gate.promise;
      return { kind: 'done' };
    },
  });
  q.add('first');
  await started.promise;
  for (const k of ['noop-1', 'noop-2', 'noop-3']) q.add(k, 'routine');
  q.add('dropped', 'changed');
  q.add('noop-2', 'changed');
  gate.resolve();
  await q.idle();
  // Changed keys in the order they were first queued, then the routine ones.
  assert.deepEqual(runs, ['first', 'noop-2', 'dropped', 'noop-1', 'noop-3']);
});

// Issue 18: a resync's reading waits while a changed app is prepared and reconciled.
test("the foreground is entered while a batch with a changed key is prepared and while a changed key runs, not for routine keys", async () => {
  const clock = createManualClock();
  const real = createForeground(clock, 1000);
  let under = 0;
  const seen: string[] = [];
  const prepareMay = deferred();
  const runMay = deferred();
  const q = createWorkQueue({
    concurrency: 4,
    clock,
    retryDelay: () => 1000,
    foreground: {
      enter() {
        under += 1;
        const end = real.enter();
        return () => {
          under -= 1;
          end();
        };
      },
      get holding() {
        return real.holding;
      },
      clear: () => real.clear(),
    },
    async prepare(keys) {
      seen.push(`prepare ${keys.join(',')} under ${under}`);
      if (keys.includes('web')) await prepareMay.promise;
    },
    async process(key) {
      seen.push(`run ${key} under ${under}`);
      if (key === 'web') await runMay.promise;
      return { kind: 'done' };
    },
  });
  q.add('db', 'routine');
  await q.idle();
  q.add('web', 'changed');
  await new Promise((r) => setImmediate(r));
  prepareMay.resolve();
  await new Promise((r) => setImmediate(r));
  assert.equal(under, 1, 'web runs');
  runMay.resolve();
  await q.idle();
  await new Promise((r) => setImmediate(r));
  assert.equal(under, 0, 'and left when it ends');
  // web starts before its prepare leaves, so the foreground has no gap between the two.
  assert.deepEqual(seen, ['prepare db under 0', 'run db under 0', 'prepare web under 1', 'run web under 2']);
});

// A queue whose every run is recorded and, for the keys in `hang`, held until released.
function recordingQueue(foreground = createForeground(createManualClock(), 1000), concurrency = 1) {
  const runs: string[] = [];
  const holds = new Map<string, ReturnType<typeof deferred<void>>>();
  const q = createWorkQueue({
    concurrency,
    clock: createManualClock(),
    retryDelay: () => 1000,
    foreground,
    async process(key) {
      runs.push(key);
      await holds.get(key)?.promise;
      return { kind: 'done' };
    },
  });
  return { q, runs, hold: (key: string) => holds.set(key, deferred()).get(key) as ReturnType<typeof deferred<void>> };
}

test('issue 18: keys of the resync lane run after routine and changed keys, whatever came first', async () => {
  const { q, runs, hold } = recordingQueue();
  const first = hold('first');
  q.add('first', 'routine');
  await new Promise((r) => setImmediate(r));
  q.add('r1', 'resync');
  q.add('r2', 'resync');
  q.add('poll', 'routine');
  q.add('drop', 'changed');
  // Asked for again in a lane before it: it goes there; asked for in a later lane: it stays.
  q.add('r2', 'routine');
  q.add('poll', 'resync');
  first.resolve();
  await q.idle();
  // r2 and poll are both routine now, in the order first asked for.
  assert.deepEqual(runs, ['first', 'drop', 'r2', 'poll', 'r1']);
});

test('issue 18: keys of the resync lane wait while the foreground holds, and go when it ends or its hold is over', async () => {
  const clock = createManualClock();
  const foreground = createForeground(clock, 1000);
  const { q, runs } = recordingQueue(foreground, 4);
  const endDrop = foreground.enter();
  q.add('r1', 'resync');
  q.add('poll', 'routine');
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  assert.deepEqual(runs, ['poll'], 'a routine key is not held');
  endDrop();
  await q.idle();
  assert.deepEqual(runs, ['poll', 'r1']);
  foreground.enter();
  q.add('r2', 'resync');
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  assert.deepEqual(runs, ['poll', 'r1']);
  await clock.advance(1000);
  await q.idle();
  assert.deepEqual(runs, ['poll', 'r1', 'r2'], 'a second into foreground work that goes on');
});
