// The reconcile loop: list apps.d, plan every app, and feed app names to the work queue. File
// events only ask for a rescan (rule 9); a periodic resync is what counts (rule 10).
import type { Clock, TimerHandle } from '../clock.ts';
import { createWorkQueue, type ReconcileResult, type WorkQueue } from './workqueue.ts';
import { createBackoff, type BackoffPolicy } from './backoff.ts';
import { planDirectory, type AppVerdict, type BuiltSpec, type DeleteGuards, type ListedApp, type ManagedApp } from './desired.ts';
import { createPlanScope } from './plan-scope.ts';
import { createForeground } from './foreground.ts';
import type { Pace } from '../fsx/in-chunks.ts';

// `dev`: the device apps.d is on, to tell an unmounted directory from an emptied one (rule 12).
// `apps` names every app; one whose file and NAME.env no pass looked at again since is the very
// ListedApp object of the last listing (src/controller/adapters.ts createAppLister), so work may
// be memoised on its identity.
export type DirListing = { ok: true; apps: ListedApp[]; settleAt?: number; dev: number } | { ok: false; reason: string };

// What a spec must say for the loop to tell one version of an app from another.
// `earlierForm`: the same content as an earlier release serialised it, which a VM it deployed may
// still run (handlers/plan.ts inRunningForm); an operation towards it is one towards this version.
// `gpuGrant`: the GPUs the pass gave it; other ones are another operation.
type SpecIdentity = {
  composeHash: string;
  env?: { hash: string } | undefined;
  earlierForm?: { composeHash: string } | undefined;
  gpuGrant?: { mode: string; slots: readonly string[] } | undefined;
};

export type ControllerDeps<S extends SpecIdentity> = {
  // `full`: a resync pass (rule 10), which re-reads everything here unless `refresh` did.
  list(full: boolean): Promise<DirListing>;
  // A resync's reading of everything (apps.d, NAME.env, records, the VMM's VMs), done before its
  // pass and outside it, so file events are acted on meanwhile (issue 18): what differs from what
  // the loop holds reaches that pass as hints. Without it the pass itself re-reads (list(true)).
  // Its every step waits for `pace`: while event passes or changed apps' prepares and reconciles
  // are under way (for at most the first second of them).
  refresh?(pace: Pace): Promise<void>;
  // An app's verdict changed on a pass that did not re-list the VMs: what is known of them is old.
  changed?(name: string): void;
  build(app: Extract<ListedApp, { kind: 'settled' }>): BuiltSpec<S>;
  // The apps we own (have a record for), and whether each currently holds its ports; `full` as
  // for list (an event pass may answer from memory).
  managed(full: boolean): Promise<Map<string, ManagedApp>>;
  // Resources shared across apps and decided once every verdict is known (the host's GPUs): may
  // hold an app back or complete its spec, in place.
  claim?(verdicts: Map<string, AppVerdict<S>>, managed: ReadonlyMap<string, ManagedApp>): Promise<void>;
  // Apps the last run left a status for: those the first pass finds with neither a file nor a
  // record are reconciled as gone, like an app that vanishes while we run.
  known?: readonly string[];
  reconcile(name: string): Promise<ReconcileResult>;
  // Batched local work before a batch of reconciles runs (see WorkQueueOptions.prepare).
  prepare?(names: string[]): Promise<void>;
  // Told of every app's verdict (held back: invalid, conflict, pending …; or to run): on a full
  // pass of each, on any other of those that changed.
  observed(name: string, verdict: AppVerdict<S>, file: string): Promise<void>;
  // A spec that takes a resource other apps share besides host ports (GPUs): such an app is
  // planned on every pass, with all the others that share something (issue 18).
  shares?(spec: S): boolean;
  // Every managed app vanished in one scan; teardown waits for a second scan R later (rule 13).
  massTeardownHeld?(names: string[]): void;
  // Told when the directory itself cannot be listed (rule 12) and when it can again.
  dirFault(reason: string | undefined): void;
  onResult?(name: string, result: ReconcileResult): void;
  // A reconcile failed; it is retried after `retryInMs` (rule 16).
  failed(name: string, result: Extract<ReconcileResult, { kind: 'retry' }>, retryInMs: number): void;
  clock: Clock;
  settings: { resyncMs: number; deleteConfirmMs: number; concurrency: number; backoff: BackoffPolicy };
};

export type Controller<S> = {
  // Run the first scan and plan; resolves when every app has been queued (READY=1 point).
  start(): Promise<void>;
  // Ask for a rescan soon (a file event, a watcher fault).
  poke(reason: PokeReason): void;
  desired(name: string): AppVerdict<S> | undefined;
  // Every app name with its verdict as of the last pass.
  verdicts(): Array<[string, AppVerdict<S>]>;
  // Resolves when no scan or reconcile is running or queued.
  idle(): Promise<void>;
  stop(): Promise<void>;
};

// Why a pass is asked for; the FULL_PASS_REASONS make it a full one.
export type PokeReason = 'start' | 'resync' | 'manual' | 'watcher-degraded' | 'watcher-armed' | 'fs-event' | 'timer' | 'coalesced';
const FULL_PASS_REASONS: ReadonlySet<PokeReason> = new Set(['start', 'resync', 'manual', 'watcher-degraded', 'watcher-armed']);

// How long into a stretch of event work a resync's work waits for it (src/controller/foreground.ts).
const FOREGROUND_MAX_HOLD_MS = 1000;

// Whether two verdicts of an app are alike: ones that differ call for a reconcile. Compared field
// by field, not as built strings: an event pass compares every app's (issue 18).
function sameVerdict<S extends SpecIdentity>(a: AppVerdict<S>, b: AppVerdict<S>): boolean {
  if (a.kind === 'app' && b.kind === 'app') {
    const [x, y] = [a.spec, b.spec];
    return (
      a.fileHash === b.fileHash && x.composeHash === y.composeHash && (x.env?.hash ?? '') === (y.env?.hash ?? '') &&
      (a.renamedFrom ?? '') === (b.renamedFrom ?? '') && (x.gpuGrant?.mode ?? '') === (y.gpuGrant?.mode ?? '') &&
      (x.gpuGrant?.slots.join(',') ?? '') === (y.gpuGrant?.slots.join(',') ?? '')
    );
  }
  if (a.kind === 'hold' && b.kind === 'hold') return a.why === b.why && (a.fileHash ?? '') === (b.fileHash ?? '') && a.reason === b.reason;
  return a.kind === 'gone' && b.kind === 'gone' && (a.renamedTo ?? '') === (b.renamedTo ?? '');
}

// The entries of `map` whose keys are in `keys`.
function entriesOf<V>(map: ReadonlyMap<string, V>, keys: ReadonlySet<string>): Map<string, V> {
  const out = new Map<string, V>();
  for (const key of keys) {
    const value = map.get(key);
    if (value !== undefined) out.set(key, value);
  }
  return out;
}

// Build the loop; nothing runs until start().
export function createController<S extends SpecIdentity>(deps: ControllerDeps<S>): Controller<S> {
  const { clock, settings } = deps;
  const verdicts = new Map<string, AppVerdict<S>>();
  const guards: DeleteGuards = { absentSince: new Map() };
  const backoff = createBackoff(settings.backoff);
  const notBefore = new Map<string, number>();
  const lastFileHash = new Map<string, string>();
  // `known` names no pass has looked at yet.
  const unseen = new Set(deps.known);
  let massGuardWarned = false;
  // Apps whose VM holds a port another app waits for (port-wait verdicts of the last pass), and
  // the apps whose reconcile ended while a pass ran: that pass may have made an app wait for one
  // of them with what it knew before.
  const awaited = new Set<string>();
  const endedDuringPass = new Set<string>();
  let homeDev: number | undefined;
  const timers = new Set<TimerHandle>();
  let scanning: Promise<void> | undefined;
  // A resync's refresh under way, and whether another was asked for meanwhile.
  let refreshing: Promise<void> | undefined;
  let refreshAgain = false;
  let rescanWanted = false;
  let fullWanted = false;
  let stopped = false;

  // Apps queued because their verdict changed and not prepared since: only they are prepared. An
  // unchanged app was prepared when its verdict last changed, and its operation registers its hash
  // itself should that have failed; preparing a resync's 5 000 of them (a record stat each) held up
  // a drop that came meanwhile, whose batch waits for the one being prepared (issue 18).
  const toPrepare = new Set<string>();
  const prepare = deps.prepare;
  const scope = createPlanScope<S>();
  // Event passes and changed apps' reconciles go before a resync's reading, pass and no-op
  // reconciles (issue 18).
  const foreground = createForeground(clock, FOREGROUND_MAX_HOLD_MS);
  const pace: Pace = () => foreground.clear();
  const queue: WorkQueue = createWorkQueue({
    concurrency: settings.concurrency,
    clock,
    foreground,
    process: (name) => deps.reconcile(name),
    prepare:
      prepare &&
      (async (names) => {
        const due = names.filter((name) => toPrepare.delete(name));
        if (due.length > 0) await prepare(due);
      }),
    retryDelay: (name, result) => {
      const v = verdicts.get(name);
      // The file changed while the failed attempt ran: the new version goes at once (rule 16).
      const attempted = result.decision?.to;
      if (attempted && v?.kind === 'app' && v.spec.composeHash !== attempted && v.spec.earlierForm?.composeHash !== attempted) return 0;
      const { delayMs } = backoff.fail(name, v?.kind === 'app' ? v.spec.composeHash : (v?.kind ?? ''));
      notBefore.set(name, clock.now() + delayMs);
      deps.failed(name, result, delayMs);
      return delayMs;
    },
    onResult: (name, result) => {
      if (result.kind === 'done') {
        backoff.reset(name);
        notBefore.delete(name);
        // A torn-down app's VM no longer holds its ports: a file held for one of them can go now.
        if (verdicts.get(name)?.kind === 'gone') poke('timer');
      }
      // An app others wait for may have let go of their ports (its upgrade restarted its VM).
      if (awaited.has(name)) poke('timer');
      if (scanning) endedDuringPass.add(name);
      deps.onResult?.(name, result);
    },
  });

  // One-shot timer that forgets itself when it fires.
  function after(ms: number, fn: () => void): void {
    if (stopped) return;
    const handle = clock.schedule(ms, () => {
      timers.delete(handle);
      fn();
    });
    timers.add(handle);
  }

  function scheduleScan(at: number): void {
    after(Math.max(0, at - clock.now()), () => poke('timer'));
  }

  // A full pass reconciles every app against a fresh list of VMs (start, every R, a watcher
  // fault, a manual poke); a pass for a file event or a timer only the apps whose verdict changed,
  // so a drop beside a thousand apps does not queue behind a thousand no-ops.
  async function pass(full: boolean): Promise<void> {
    endedDuringPass.clear();
    const listing = await deps.list(full);
    if (!listing.ok) {
      deps.dirFault(listing.reason);
      return;
    }
    // apps.d on another device than at start-up is the mount point under an unmounted file
    // system (or a move): acting on it could tear down every app, so nothing is done (rule 12).
    homeDev ??= listing.dev;
    if (listing.dev !== homeDev) {
      deps.dirFault(
        `apps.d is now on another file system (device ${listing.dev}, was ${homeDev}): unmounted? No app is deployed or torn ` +
          'down until it is back; if the move is intended, restart dstack-supervisor',
      );
      return;
    }
    deps.dirFault(undefined);
    const managed = await deps.managed(full);
    const now = clock.now();
    // An event pass plans only the apps whose inputs changed and those tied to others' (issue 18).
    const within = full || guards.massSince !== undefined ? undefined : scope.narrow(listing.apps, managed);
    if (within === undefined) scope.all(listing.apps, managed);
    const out = planDirectory<S>(
      {
        listed: within === undefined ? listing.apps : listing.apps.filter((a) => within.has(a.name)),
        managed: within === undefined ? managed : entriesOf(managed, within),
        build: deps.build,
        shares: deps.shares,
        now,
        deleteConfirmMs: settings.deleteConfirmMs,
        massConfirmMs: settings.resyncMs,
        lastFileHash,
      },
      guards,
    );
    await deps.claim?.(out.verdicts, managed);
    if (out.massGuardActive && !massGuardWarned) deps.massTeardownHeld?.([...managed.keys()]);
    massGuardWarned = out.massGuardActive;
    awaited.clear();
    for (const [name, v] of out.verdicts) {
      if (v.kind === 'app' || (v.kind === 'hold' && v.fileHash !== undefined)) lastFileHash.set(name, v.fileHash as string);
      if (v.kind === 'gone') lastFileHash.delete(name);
      if (v.kind === 'hold' && v.waitsFor !== undefined) awaited.add(v.waitsFor);
    }
    if ([...awaited].some((name) => endedDuringPass.has(name))) rescanWanted = true;
    // An app with no file and no record left (a refused file deleted, a teardown over, or
    // either while we were down) is reconciled once more, as gone, so no status of it stays
    // behind (issue 13).
    const due: string[] = [];
    const forget = (name: string) => {
      verdicts.delete(name);
      backoff.reset(name);
      notBefore.delete(name);
      due.push(name);
    };
    for (const name of within ?? verdicts.keys()) if (verdicts.has(name) && !out.verdicts.has(name)) forget(name);
    scope.planned(out.verdicts, out.coupled, within);
    // Only the first pass has unseen names.
    for (const name of unseen) if (!out.verdicts.has(name) && !due.includes(name)) forget(name);
    unseen.clear();
    const changed = new Set<string>();
    for (const [name, verdict] of out.verdicts) {
      const before = verdicts.get(name);
      if (before === undefined || !sameVerdict(before, verdict)) changed.add(name);
    }
    // Each app's status is its own file: they are written side by side. An event pass tells only
    // of the verdicts that changed (issue 18); a full pass of every one, so a status anything else
    // wrote over is put right within R.
    const told = full ? [...out.verdicts] : [...changed].map((name): [string, AppVerdict<S>] => [name, out.verdicts.get(name) as AppVerdict<S>]);
    await Promise.all(told.map(([name, verdict]) => deps.observed(name, verdict, scope.fileOf(name) ?? managed.get(name)?.file ?? name)));
    for (const [name, verdict] of out.verdicts) {
      const before = verdicts.get(name);
      verdicts.set(name, verdict);
      const newVersion =
        verdict.kind === 'app' && (before?.kind !== 'app' || before.spec.composeHash !== verdict.spec.composeHash);
      if (newVersion) {
        backoff.reset(name);
        notBefore.delete(name);
      }
      if (full) due.push(name);
      else if (changed.has(name)) {
        deps.changed?.(name);
        due.push(name);
      }
    }
    // Queued in one go, after every verdict is known, so the queue prepares them as one batch.
    for (const name of due) {
      const wait = (notBefore.get(name) ?? 0) - now;
      if (changed.has(name)) toPrepare.add(name);
      if (wait > 0) queue.addAfter(name, wait);
      else queue.add(name, changed.has(name) ? 'changed' : full ? 'resync' : 'routine');
    }
    const next = [listing.settleAt, out.recheckAt].filter((t): t is number => t !== undefined);
    for (const at of next) scheduleScan(at);
  }

  // Read everything again outside any pass, then run the full pass on what was found, once event
  // work under way is through.
  function refresh(): void {
    const read = deps.refresh;
    if (stopped || read === undefined) return;
    if (refreshing) {
      refreshAgain = true;
      return;
    }
    refreshing = read(pace)
      .catch((err: unknown) => deps.dirFault(err instanceof Error ? err.message : String(err)))
      .then(pace)
      .finally(() => {
        refreshing = undefined;
        fullWanted = true;
        poke('coalesced');
        if (refreshAgain) {
          refreshAgain = false;
          refresh();
        }
      });
  }

  function poke(reason: PokeReason): void {
    if (stopped) return;
    if (FULL_PASS_REASONS.has(reason) && deps.refresh) {
      refresh();
      return;
    }
    if (FULL_PASS_REASONS.has(reason)) fullWanted = true;
    if (scanning) {
      rescanWanted = true;
      return;
    }
    const full = fullWanted;
    fullWanted = false;
    const ended = full ? undefined : foreground.enter();
    scanning = pass(full)
      .catch((err: unknown) => {
        // What the failed pass took as planned may not be: the next one plans every app.
        scope.reset();
        deps.dirFault(err instanceof Error ? err.message : String(err));
      })
      .finally(() => {
        scanning = undefined;
        if (rescanWanted) {
          rescanWanted = false;
          poke('coalesced');
        }
        // After the pass that follows has begun: the reading waits through both.
        ended?.();
      });
  }

  function arm(): void {
    after(settings.resyncMs, () => {
      poke('resync');
      arm();
    });
  }

  return {
    async start() {
      poke('start');
      await refreshing;
      await scanning;
      arm();
    },
    poke,
    desired: (name) => verdicts.get(name),
    verdicts: () => [...verdicts],
    async idle() {
      for (;;) {
        if (refreshing) await refreshing;
        if (scanning) await scanning;
        await queue.idle();
        if (!refreshing && !scanning && queue.running === 0) return;
      }
    },
    async stop() {
      stopped = true;
      for (const t of timers) t.cancel();
      timers.clear();
      await refreshing;
      await scanning;
      await queue.stop();
    },
  };
}
