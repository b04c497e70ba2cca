import { stat } from 'node:fs/promises';
import { watch as fsWatch, type FSWatcher } from 'node:fs';
import { BUS_EVENTS, type Bus } from '../src/bus.ts';
import type { Clock, TimerHandle } from '../src/clock.ts';
import { isNoiseEvent } from './ignore.ts';

// What the watcher is doing: `armed` = inotify events arrive; `degraded` = only resync runs until
// the next re-arm attempt (docs/apps-dir.md rule 11); `disabled` = switched off by configuration.
export type WatcherState = 'arming' | 'armed' | 'degraded' | 'disabled' | 'closed';

// Start an inotify watch on a directory: `onEvent` gets the name of each entry that changed (null
// when the kernel gives none). Tests hand in a wrapper to inject inotify faults.
export type WatchDir = (dir: string, onEvent: (name: string | null) => void) => FSWatcher;

// Node's own fs.watch: one inotify watch on the directory itself, which reports every entry's
// create, write, chmod, rename and delete. Not chokidar: it lstat()s every entry of the directory
// on events, O(files x events) for a burst (README, Decisions); these events are only hints.
export const watchDir: WatchDir = (dir, onEvent) => fsWatch(dir, { persistent: true }, (_event, name) => onEvent(name));

// How to watch apps.d.
export type AppsWatcherOptions = {
  dir: string;
  bus: Bus;
  clock: Clock;
  enabled?: boolean;
  // Events closer together than this become one rescan.
  debounceMs?: number;
  // Re-arm after a fault: first wait, doubling up to the last.
  rearm?: { initialMs: number; maxMs: number };
  watch?: WatchDir;
};

// A running watcher; `close` stops it and every timer it holds.
export type AppsWatcher = {
  state(): WatcherState;
  close(): Promise<void>;
};

type DirId = { dev: number; ino: number };

class WatchFault extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

function faultOf(dir: string, err: unknown): WatchFault {
  if (err instanceof WatchFault) return err;
  const code = err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : 'WATCH_ERROR';
  const why: Record<string, string> = {
    ENOSPC: 'the inotify watch limit is reached; raise fs.inotify.max_user_watches',
    EMFILE: 'too many open files or inotify instances; raise LimitNOFILE or fs.inotify.max_user_instances',
    ENOENT: 'the directory does not exist; watching resumes once it does',
    ENOTDIR: 'it is not a directory',
  };
  return new WatchFault(code, `${dir}: file watcher stopped: ${why[code] ?? (err instanceof Error ? err.message : String(err))}`);
}

async function identify(dir: string): Promise<DirId> {
  const st = await stat(dir);
  if (!st.isDirectory()) throw new WatchFault('ENOTDIR', `${dir}: file watcher stopped: it is not a directory`);
  return { dev: st.dev, ino: st.ino };
}

// Watch apps.d (top level only) and turn every relevant event into one debounced `rescan` on the
// bus. Events are only hints (rule 9): only the names of the entries they came for travel with
// them (which entries the next scan looks at again), never content, and no write-finish
// heuristic runs because the scanner's settling decides. On an inotify error, or when apps.d is
// removed or replaced by another inode, it emits `watcher-degraded`, closes, and re-arms with
// backoff until it can emit `watcher-armed` (rule 11).
// It never talks to the VMM. Resolves after the first arm attempt, armed or degraded.
export async function watchAppsDir(options: AppsWatcherOptions): Promise<AppsWatcher> {
  const { dir, bus, clock } = options;
  const debounceMs = options.debounceMs ?? 100;
  const rearm = options.rearm ?? { initialMs: 1_000, maxMs: 60_000 };
  const watch = options.watch ?? watchDir;
  let state: WatcherState = options.enabled === false ? 'disabled' : 'arming';
  let watcher: FSWatcher | undefined;
  let armedAs: DirId | undefined;
  let tick: TimerHandle | undefined;
  let retry: TimerHandle | undefined;
  let delay = rearm.initialMs;
  let dirty = false;
  // The entry names events came for since the last rescan; null once one came without a name.
  let named: Set<string> | null = new Set();
  // Bumped whenever a watch is discarded, so its late events are ignored.
  let generation = 0;

  function discard(): void {
    generation += 1;
    tick?.cancel();
    tick = undefined;
    dirty = false;
    named = new Set();
    const old = watcher;
    watcher = undefined;
    old?.close();
  }

  async function degrade(fault: WatchFault): Promise<void> {
    if (state !== 'armed' && state !== 'arming') return;
    state = 'degraded';
    discard();
    if (state !== 'degraded') return;
    const retryInMs = delay;
    delay = Math.min(delay * 2, rearm.maxMs);
    retry = clock.schedule(retryInMs, () => {
      retry = undefined;
      void arm();
    });
    bus.emit(BUS_EVENTS.watcherDegraded, { dir, reason: fault.message, code: fault.code, retryInMs });
    bus.emit(BUS_EVENTS.rescan, { dir, reason: 'watcher-degraded' });
  }

  // The debounce timer fired: make sure apps.d is still the directory we armed on, then rescan.
  async function check(): Promise<void> {
    const id = await identify(dir).catch((err: unknown) => faultOf(dir, err));
    if (state !== 'armed' || armedAs === undefined) return;
    if (id instanceof WatchFault) return degrade(id);
    if (id.dev !== armedAs.dev || id.ino !== armedAs.ino) {
      return degrade(new WatchFault('APPS_DIR_REPLACED', `${dir}: was replaced by another directory (inode ${armedAs.ino} -> ${id.ino}); re-arming the file watcher on it`));
    }
    if (!dirty) return;
    const names = named === null ? undefined : [...named];
    dirty = false;
    named = new Set();
    bus.emit(BUS_EVENTS.rescan, { dir, reason: 'fs-event', ...(names ? { names } : {}) });
  }

  function hint(gen: number, name: string | null, relevant: boolean): void {
    if (gen !== generation || state !== 'armed') return;
    dirty ||= relevant;
    if (relevant && name === null) named = null;
    else if (relevant) named?.add(name as string);
    tick ??= clock.schedule(debounceMs, () => {
      tick = undefined;
      void check();
    });
  }

  async function arm(): Promise<void> {
    if (state === 'closed') return;
    state = 'arming';
    const gen = ++generation;
    try {
      const before = await identify(dir);
      // Any event, even one for a noise name, re-checks the directory's identity; only events
      // that can change what apps.d means mark it dirty. inotify_add_watch has returned when
      // watch() does, so nothing after `before` is missed.
      const w = watch(dir, (name) => hint(gen, name, name === null || !isNoiseEvent(name)));
      watcher = w;
      w.on('error', (err) => {
        if (gen === generation) void degrade(faultOf(dir, err));
      });
      const after = await identify(dir);
      if (after.dev !== before.dev || after.ino !== before.ino) throw new WatchFault('APPS_DIR_REPLACED', `${dir}: was replaced while the watcher started`);
      if (gen !== generation || state !== 'arming') return;
      armedAs = after;
      state = 'armed';
      delay = rearm.initialMs;
      bus.emit(BUS_EVENTS.watcherArmed, { dir, ino: after.ino });
      // Changes made while no watcher ran (or before the first one) are not lost.
      bus.emit(BUS_EVENTS.rescan, { dir, reason: 'watcher-armed' });
    } catch (err) {
      if (gen === generation) await degrade(faultOf(dir, err));
    }
  }

  if (state === 'arming') await arm();
  return {
    state: () => state,
    async close() {
      state = 'closed';
      retry?.cancel();
      retry = undefined;
      discard();
    },
  };
}
