import type { Clock, TimerHandle } from '../clock.ts';
import type { Decision } from '../log/decision.ts';
import type { Foreground } from './foreground.ts';

// What one reconcile of a key asks the loop to do next (controller-runtime's Result).
export type ReconcileResult =
  | { kind: 'done' }
  | { kind: 'requeueAfter'; ms: number }
  // `decision` says what was being attempted, for the failure's journal line.
  | { kind: 'retry'; error: unknown; decision?: Decision }
  | { kind: 'terminal'; error: unknown };

export type WorkQueueOptions = {
  concurrency: number;
  clock: Clock;
  // Reconcile one key. Never runs twice at once for the same key.
  process: (key: string) => Promise<ReconcileResult>;
  // Delay before retrying a failed key; the caller owns backoff policy.
  retryDelay: (key: string, result: Extract<ReconcileResult, { kind: 'retry' }>) => number;
  // Told about every finished reconcile, for logging and metrics.
  onResult?: (key: string, result: ReconcileResult) => void;
  // Cheap local work done for every ready key in one batch before any of them runs (one
  // allowlist write for a whole burst); not bounded by `concurrency`, and a key being prepared
  // counts as running for coalescing, unless it is asked for in the `changed` lane meanwhile: then
  // it is prepared again. Its failure is left for `process` to meet and report.
  prepare?: (keys: string[]) => Promise<void>;
  // Entered while a batch with a key of the `changed` lane is prepared and while such a key runs;
  // keys of the `resync` lane do not start while it holds.
  foreground?: Foreground;
};

// Which keys not started yet go first (issue 18), whatever came first: `changed` (the key's file,
// record or VM changed), then `routine` (retries, polls, follow-ups), then `resync` (a resync's
// thousands of no-op reconciles, which also wait while the foreground holds). A key asked for in
// several lanes goes in the first of them.
export type Lane = 'changed' | 'routine' | 'resync';

export type WorkQueue = {
  // Ask for `key` to be reconciled soon; adds while it runs coalesce into one follow-up.
  add(key: string, lane?: Lane): void;
  // Ask for `key` after `ms`; an earlier pending request wins.
  addAfter(key: string, ms: number): void;
  // Resolves once nothing is queued, running or dirty (timers may still be pending).
  idle(): Promise<void>;
  // Stop taking work; resolves once running reconciles have returned.
  stop(): Promise<void>;
  readonly running: number;
};

// A keyed work queue: one reconcile per key at a time, at most `concurrency` keys at once, edits
// during a run collapse into a single follow-up (docs/apps-dir.md rules 14 and 15).
export function createWorkQueue(opts: WorkQueueOptions): WorkQueue {
  const ready: string[] = [];
  const queued = new Set<string>();
  // Keys past `prepare`, waiting for a slot (in order), by lane.
  const prepared = new Set<string>();
  const preparedFirst = new Set<string>();
  const preparedLast = new Set<string>();
  // Keys asked for in the `changed` lane, and those asked for in the `resync` lane only, that have
  // not started yet.
  const changedLane = new Set<string>();
  const resyncOnly = new Set<string>();
  // A pump is due once the foreground stops holding.
  let awaitingForeground = false;
  let preparing = false;
  // The batch being prepared, and those of its keys asked for in the `changed` lane meanwhile:
  // what they were prepared for (a held file's verdict) may not be what they now want (issue 18:
  // run as they were, each deploy registered its own hash, 39 and 71 allowlist writes in a
  // burst). A routine ask (a resync) only coalesces, so resyncs faster than a prepare cannot
  // keep a key from running.
  const inPrepare = new Set<string>();
  const stale = new Set<string>();
  // Keys being prepared, waiting for a slot or running: never queued twice.
  const active = new Set<string>();
  let runningCount = 0;
  const dirty = new Set<string>();
  const timers = new Map<string, { at: number; handle: TimerHandle }>();
  const idleWaiters: Array<() => void> = [];
  const inFlight = new Set<Promise<void>>();
  let stopped = false;

  const isIdle = () => ready.length === 0 && active.size === 0 && dirty.size === 0;

  function settleIdle(): void {
    if (!isIdle()) return;
    for (const resolve of idleWaiters.splice(0)) resolve();
  }

  function add(key: string, lane: Lane = 'routine'): void {
    if (stopped) return;
    if (lane === 'changed') changedLane.add(key);
    if (lane !== 'resync') resyncOnly.delete(key);
    else if (!queued.has(key) && !active.has(key)) resyncOnly.add(key);
    const timer = timers.get(key);
    if (timer) {
      timer.handle.cancel();
      timers.delete(key);
    }
    // Not started yet: it goes back to be prepared again with what it is asked for now.
    if (prepared.delete(key) || preparedFirst.delete(key) || preparedLast.delete(key)) active.delete(key);
    if (lane === 'changed' && inPrepare.has(key)) {
      stale.add(key);
      return;
    }
    if (active.has(key)) {
      dirty.add(key);
      return;
    }
    if (queued.has(key)) return;
    queued.add(key);
    ready.push(key);
    pump();
  }

  function addAfter(key: string, ms: number): void {
    if (stopped) return;
    if (ms <= 0) return add(key);
    const at = opts.clock.now() + ms;
    const existing = timers.get(key);
    if (existing && existing.at <= at) return;
    existing?.handle.cancel();
    const handle = opts.clock.schedule(ms, () => {
      timers.delete(key);
      add(key);
    });
    timers.set(key, { at, handle });
  }

  function pump(): void {
    // A microtask later, so keys added together in this turn share one batch.
    if (!stopped && !preparing && ready.length > 0) {
      preparing = true;
      queueMicrotask(startPrepare);
    }
    for (const lane of [preparedFirst, prepared, preparedLast]) {
      if (lane === preparedLast && lane.size > 0 && opts.foreground?.holding) {
        waitForForeground(opts.foreground);
        break;
      }
      for (const key of lane) {
        if (stopped || runningCount >= opts.concurrency) break;
        lane.delete(key);
        changedLane.delete(key);
        resyncOnly.delete(key);
        runningCount += 1;
        const ended = lane === preparedFirst ? opts.foreground?.enter() : undefined;
        const run = runOne(key).finally(() => {
          inFlight.delete(run);
          ended?.();
        });
        inFlight.add(run);
      }
    }
    settleIdle();
  }

  function waitForForeground(foreground: Foreground): void {
    if (awaitingForeground) return;
    awaitingForeground = true;
    void foreground.clear().then(() => {
      awaitingForeground = false;
      pump();
    });
  }

  const laneOf = (key: string) => (changedLane.has(key) ? preparedFirst : resyncOnly.has(key) ? preparedLast : prepared);

  // Move every ready key into the prepared lane, through `prepare` when there is one.
  function startPrepare(): void {
    const batch = stopped ? [] : ready.splice(0);
    for (const key of batch) {
      queued.delete(key);
      active.add(key);
    }
    if (!opts.prepare || batch.length === 0) {
      preparing = false;
      for (const key of batch) laneOf(key).add(key);
      pump();
      return;
    }
    for (const key of batch) inPrepare.add(key);
    const ended = batch.some((key) => changedLane.has(key)) ? opts.foreground?.enter() : undefined;
    const done = opts
      .prepare(batch)
      .catch(() => undefined)
      .then(() => {
        preparing = false;
        for (const key of batch) {
          inPrepare.delete(key);
          if (stopped) active.delete(key);
          else if (stale.delete(key)) {
            // Prepared again instead; a routine ask meanwhile is covered by that.
            dirty.delete(key);
            active.delete(key);
            add(key);
          } else laneOf(key).add(key);
        }
        pump();
        // After its keys have started: the reading waits through both.
        ended?.();
      })
      .finally(() => inFlight.delete(done));
    inFlight.add(done);
  }

  async function runOne(key: string): Promise<void> {
    let result: ReconcileResult;
    try {
      result = await opts.process(key);
    } catch (error) {
      result = { kind: 'retry', error };
    }
    runningCount -= 1;
    active.delete(key);
    opts.onResult?.(key, result);
    if (result.kind === 'retry') {
      // A failure waits out its backoff even if the key was asked for meanwhile: edits that
      // matter (a new hash) are for retryDelay to judge, or failures would loop hot (rule 16).
      dirty.delete(key);
      addAfter(key, opts.retryDelay(key, result));
    } else if (dirty.delete(key)) {
      add(key);
    } else if (result.kind === 'requeueAfter') {
      addAfter(key, result.ms);
    }
    pump();
  }

  return {
    add,
    addAfter,
    idle: () => (isIdle() ? Promise.resolve() : new Promise((resolve) => idleWaiters.push(resolve))),
    async stop() {
      stopped = true;
      for (const t of timers.values()) t.handle.cancel();
      timers.clear();
      ready.length = 0;
      queued.clear();
      for (const key of [...prepared, ...preparedFirst, ...preparedLast]) active.delete(key);
      prepared.clear();
      preparedFirst.clear();
      preparedLast.clear();
      changedLane.clear();
      resyncOnly.clear();
      stale.clear();
      dirty.clear();
      await Promise.allSettled([...inFlight]);
      settleIdle();
    },
    get running() {
      return active.size;
    },
  };
}
