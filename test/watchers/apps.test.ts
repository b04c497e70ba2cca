import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, open, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FSWatcher } from 'node:fs';
import { on } from 'node:events';
import { execa } from 'execa';
import { createBus, type Bus, type BusEventName, type BusEvents } from '../../src/bus.ts';
import { systemClock, type Clock } from '../../src/clock.ts';
import { watchAppsDir, watchDir, type AppsWatcher, type AppsWatcherOptions } from '../../watchers/apps.ts';
import { createManualClock } from '../helpers/manual-clock.ts';
import { defer } from '../helpers/cleanup.ts';

// Each inotify watch the watcher started, and whether it has been closed.
type Instance = { watch: FSWatcher; closed: boolean };
type Setup = { root: string; dir: string; bus: Bus; watcher: AppsWatcher; instances: Instance[]; events: Array<[BusEventName, unknown]> };

// A temp apps.d, a bus that records every event, and a watcher on it (closed after the test).
async function setup(
  t: { after: (fn: () => Promise<void>) => void },
  options: { clock?: Clock; createDir?: boolean } & Partial<AppsWatcherOptions> = {},
): Promise<Setup> {
  const root = await mkdtemp(join(tmpdir(), 'watch-'));
  defer(t, () => rm(root, { recursive: true, force: true }));
  const dir = join(root, 'apps.d');
  if (options.createDir !== false) await mkdir(dir);
  const bus = createBus();
  const events: Array<[BusEventName, unknown]> = [];
  bus.on('*', (name, payload) => events.push([name, payload]));
  const instances: Instance[] = [];
  const watcher = await watchAppsDir({
    dir,
    bus,
    clock: options.clock ?? systemClock,
    debounceMs: options.debounceMs ?? 20,
    rearm: options.rearm ?? { initialMs: 30, maxMs: 1000 },
    enabled: options.enabled,
    watch: (path, onEvent) => {
      const instance = { watch: watchDir(path, onEvent), closed: false };
      const close = instance.watch.close.bind(instance.watch);
      instance.watch.close = () => {
        instance.closed = true;
        close();
      };
      instances.push(instance);
      return instance.watch;
    },
  });
  defer(t, () => watcher.close());
  return { root, dir, bus, watcher, instances, events };
}

// The next `name` event on the bus that satisfies `match`, or a rejection after `timeoutMs`.
function nextEvent<K extends BusEventName>(bus: Bus, name: K, match: (e: BusEvents[K]) => boolean = () => true, timeoutMs = 5000): Promise<BusEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      bus.off(name, handler);
      reject(new Error(`no ${name} event within ${timeoutMs} ms`));
    }, timeoutMs);
    const handler = (e: BusEvents[K]) => {
      if (!match(e)) return;
      clearTimeout(timer);
      bus.off(name, handler);
      resolve(e);
    };
    bus.on(name, handler);
  });
}

// Resolves once the inotify watch itself has reported an event for every one of `names`; it
// listens from the call on, so call it before the change.
async function watchSaw(w: FSWatcher, names: string[]): Promise<void> {
  const left = new Set(names);
  try {
    for await (const [, name] of on(w, 'change', { signal: AbortSignal.timeout(5000) })) {
      left.delete(String(name));
      if (left.size === 0) return;
    }
  } catch (err) {
    throw new Error(`no inotify event for ${[...left].join()}`, { cause: err });
  }
}

// A watcher whose debounce timer (100 ms) only fires when the test advances the clock.
async function setupManual(t: { after: (fn: () => Promise<void>) => void }) {
  const clock = createManualClock();
  const s = await setup(t, { clock, debounceMs: 100 });
  const w = s.instances[0]?.watch;
  assert.ok(w);
  return { clock, s, w };
}

const fsEvents = (s: Setup) => s.events.filter(([n, p]) => n === 'rescan' && (p as BusEvents['rescan']).reason === 'fs-event');

test('arming emits watcher-armed and a rescan for whatever changed before it', async (t) => {
  const s = await setup(t);
  assert.equal(s.watcher.state(), 'armed');
  assert.deepEqual(s.events, [
    ['watcher-armed', { dir: s.dir, ino: (await stat(s.dir)).ino }],
    ['rescan', { dir: s.dir, reason: 'watcher-armed' }],
  ]);
});

test('rule 9: a burst of events marks the directory dirty once and becomes ONE debounced rescan', async (t) => {
  const { clock, s, w } = await setupManual(t);
  const names = ['a.yml', 'b.yml', 'c.yaml', 'd.yml', 'e.yml'];
  const seen = watchSaw(w, names);
  await Promise.all(names.map((f) => writeFile(join(s.dir, f), 'services: {}\n')));
  await seen;
  assert.equal(clock.pending(), 1, 'one debounce timer for the whole burst');
  const rescan = nextEvent(s.bus, 'rescan');
  await clock.advance(100);
  const { names: hinted, ...rest } = await rescan;
  assert.deepEqual(rest, { dir: s.dir, reason: 'fs-event' });
  assert.deepEqual([...(hinted ?? [])].sort(), names, 'it names every entry the events came for (issue 18)');
  assert.equal(fsEvents(s).length, 1);
});

test('rule 1: events on editor swap and probe files alone never ask for a rescan', async (t) => {
  const { clock, s, w } = await setupManual(t);
  // Each file is moved in whole (one inotify event; a write in place gives two, which could
  // straddle a debounce tick and make two rescans of one real change).
  const moveIn = async (name: string, text: string) => {
    await writeFile(join(s.root, name), text);
    await rename(join(s.root, name), join(s.dir, name));
  };
  const noise = ['.web.yml.swp', '4913', 'web.yml~'];
  const seen = watchSaw(w, noise);
  await Promise.all(noise.map((f) => moveIn(f, 'x')));
  await seen;
  await clock.advance(100);
  // Listening before the real move: the noise's identity check may still be running and would
  // emit at once had the noise marked the directory dirty.
  const rescan = nextEvent(s.bus, 'rescan');
  const real = watchSaw(w, ['web.yml']);
  await moveIn('web.yml', 'services: {}\n');
  await real;
  await clock.advance(100);
  assert.deepEqual((await rescan).names, ['web.yml'], 'noise is not named');
  assert.equal(fsEvents(s).length, 1, 'only the real file asked for a rescan');
});

test('rule 9: each real tool (cp, mv, sed -i, install, vim rename-over, rsync) produces a rescan', async (t) => {
  const s = await setup(t);
  const app = join(s.dir, 'web.yml');
  const src = join(s.root, 'web.src');
  await writeFile(src, 'v: 1\n');
  const rsync = await execa('rsync', ['--version']).then(
    () => true,
    () => false,
  );
  const steps: Array<[string, () => Promise<unknown>]> = [
    ['cp', () => execa('cp', [src, app])],
    ['install', () => execa('install', ['-m', '0644', src, app])],
    ['sed -i', () => execa('sed', ['-i', 's/v: 1/v: 2/', app])],
    ['mv', async () => {
      await writeFile(join(s.root, 'web.tmp'), 'v: 3\n');
      await execa('mv', [join(s.root, 'web.tmp'), app]);
    }],
    ['vim :w syscall sequence', async () => {
      await (await open(join(s.dir, '4913'), 'wx')).close();
      await unlink(join(s.dir, '4913'));
      await rename(app, `${app}~`);
      const fresh = await open(app, 'wx', 0o644);
      await fresh.writeFile('v: 4\n');
      await fresh.sync();
      await fresh.close();
      await unlink(`${app}~`);
    }],
    ...(rsync ? ([['rsync', () => execa('rsync', [src, app])]] as Array<[string, () => Promise<unknown>]>) : []),
    ['rm', () => unlink(app)],
  ];
  for (const [tool, run] of steps) {
    const rescan = nextEvent(s.bus, 'rescan', (e) => e.reason === 'fs-event');
    await run();
    await assert.doesNotReject(rescan, tool);
  }
});

test('rule 11: apps.d replaced by another directory: degraded, then re-armed on the new inode', async (t) => {
  const s = await setup(t);
  const degraded = nextEvent(s.bus, 'watcher-degraded');
  const armed = nextEvent(s.bus, 'watcher-armed');
  await rename(s.dir, join(s.root, 'apps.d.old'));
  await mkdir(s.dir);
  const d = await degraded;
  assert.ok(['APPS_DIR_REPLACED', 'ENOENT'].includes(d.code), d.code);
  assert.equal(d.dir, s.dir);
  assert.equal((await armed).ino, (await stat(s.dir)).ino);
  assert.equal(s.watcher.state(), 'armed');
  assert.equal(s.instances[0]?.closed, true, 'the old watch is closed');
  const rescan = nextEvent(s.bus, 'rescan', (e) => e.reason === 'fs-event');
  await writeFile(join(s.dir, 'web.yml'), 'a: 1\n');
  await rescan;
});

test('rule 11: apps.d removed: degraded with growing backoff until it is back', async (t) => {
  const s = await setup(t, { rearm: { initialMs: 20, maxMs: 1000 } });
  const retries: number[] = [];
  const thirdFailure = new Promise<void>((resolve) =>
    s.bus.on('watcher-degraded', (e) => {
      retries.push(e.retryInMs);
      if (retries.length === 3) resolve();
    }),
  );
  await rm(s.dir, { recursive: true });
  await thirdFailure;
  assert.deepEqual(retries, [20, 40, 80]);
  assert.equal(s.watcher.state(), 'degraded');
  const armed = nextEvent(s.bus, 'watcher-armed');
  await mkdir(s.dir);
  await armed;
  assert.equal(s.watcher.state(), 'armed');
});

test('rule 11: an apps.d missing at start-up leaves the watcher degraded, not failed', async (t) => {
  const s = await setup(t, { createDir: false });
  assert.equal(s.watcher.state(), 'degraded');
  assert.equal(s.events[0]?.[0], 'watcher-degraded');
  assert.match((s.events[0]?.[1] as BusEvents['watcher-degraded']).reason, /does not exist/);
  const armed = nextEvent(s.bus, 'watcher-armed');
  await mkdir(s.dir);
  await armed;
});

test('rule 11: ENOSPC and EMFILE from inotify: degraded, rescan, closed, re-armed', async (t) => {
  const s = await setup(t);
  for (const [code, hint] of [
    ['ENOSPC', /max_user_watches/],
    ['EMFILE', /LimitNOFILE/],
  ] as const) {
    const current = s.instances.at(-1);
    assert.ok(current);
    const degraded = nextEvent(s.bus, 'watcher-degraded');
    const rescan = nextEvent(s.bus, 'rescan', (e) => e.reason === 'watcher-degraded');
    const armed = nextEvent(s.bus, 'watcher-armed');
    // An inotify failure, as the watch reports it.
    current.watch.emit('error', Object.assign(new Error(`${code}: inotify failed`), { code }));
    const d = await degraded;
    assert.equal(d.code, code);
    assert.match(d.reason, hint);
    await rescan;
    assert.equal(current.closed, true);
    await armed;
    assert.notEqual(s.instances.at(-1), current, 'a fresh watch');
  }
});

test('the watcher can be disabled: no inotify watch, no events', async (t) => {
  const s = await setup(t, { enabled: false });
  assert.equal(s.watcher.state(), 'disabled');
  assert.equal(s.instances.length, 0);
  assert.deepEqual(s.events, []);
});

test('close stops the inotify watch and every timer', async (t) => {
  const clock = createManualClock();
  const s = await setup(t, { clock, createDir: false });
  assert.equal(clock.pending(), 1, 'a re-arm is scheduled');
  await s.watcher.close();
  assert.equal(clock.pending(), 0);
  assert.equal(s.watcher.state(), 'closed');
  await clock.advance(60_000);
  assert.equal(s.instances.length, 0);
});

test('close stops a live inotify watch: later changes ask for nothing', async (t) => {
  const { clock, s } = await setupManual(t);
  await s.watcher.close();
  assert.equal(s.instances[0]?.closed, true);
  // A second, independent watch shows when the kernel has delivered the event.
  const witness = watchDir(s.dir, () => undefined);
  defer(t, () => witness.close());
  const delivered = watchSaw(witness, ['web.yml']);
  await writeFile(join(s.dir, 'web.yml'), 'services: {}\n');
  await delivered;
  await new Promise((r) => setImmediate(r));
  assert.equal(clock.pending(), 0, 'no debounce timer: the closed watch reported nothing');
});
