// Issue 18: a resync finds, outside the pass, the entries of apps.d that differ from what the
// scanner holds; an event pass hinted with those names must list what a full scan would. The
// oracle is a second, fresh scanner's full scan of the same directory (Q = 0 in both, so a fresh
// scanner's first look is settled too and only content and state are compared).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, chown, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createScanner, type Recheck, type ScanEntry } from '../../src/appsdir/scan.ts';
import { makeFixture, type Fixture, type Listing } from './scan-fixture.ts';

const owner = process.getuid?.() ?? 0;
const only = (...names: string[]): Recheck => ({ all: false, names: new Set(names) });
// Reads stamped well after every change: no kept read is racy unless a test says so.
const later = () => Date.now() + 5000;

// A fixture with Q = 0 whose apps.d holds `files` (each file's text is its name), scanned in full.
async function scannedWith(t: Parameters<typeof makeFixture>[0], files: string[], wallNow = later): Promise<{ f: Fixture; before: Listing }> {
  const f = await makeFixture(t, { settleMs: 0, wallNow });
  for (const file of files) await f.put(file, `${file}\n`);
  return { f, before: await f.list() };
}

// What a scan says, without object identities or the warn-once flag.
function summaryOf(listing: Listing): { entries: string[]; misnamed: string[] } {
  const entryText = (e: ScanEntry): string => {
    switch (e.state) {
      case 'settled':
        return `${e.name} settled ${e.file} ${e.sha256}`;
      case 'unsettled':
        return `${e.name} unsettled ${e.file}`;
      case 'refused':
        return `${e.name} refused ${e.file} ${e.code}`;
      case 'conflict':
        return `${e.name} conflict ${e.files.join(' ')}`;
    }
  };
  return { entries: listing.entries.map(entryText), misnamed: listing.misnamed.map((m) => m.file) };
}

// The oracle: a fresh scanner's full scan of f's apps.d.
async function fullScan(f: Fixture): Promise<Listing> {
  const fresh = createScanner({ dir: f.dir, owner, maxFileBytes: 1024 * 1024, settleMs: 0, now: () => f.clock.t });
  const result = await fresh.scan();
  assert.ok(result.kind === 'listing', result.kind === 'dir-error' ? result.message : '');
  return result;
}

async function differencesOf(f: Fixture): Promise<string[]> {
  const names = await f.scanner.differences();
  assert.ok(names, 'the scanner can tell');
  return [...names].sort();
}

// A full scan would see a change since `before`; differences() names exactly `expected`; an event
// pass hinted with them lists what the full scan does. Returns that event pass.
async function resync(f: Fixture, before: Listing, expected: string[]): Promise<Listing> {
  const truth = await fullScan(f);
  assert.notDeepEqual(summaryOf(before), summaryOf(truth), 'a full scan sees a change');
  const names = await differencesOf(f);
  assert.deepEqual(names, [...expected].sort());
  const event = await f.scanner.scan(only(...names));
  assert.ok(event.kind === 'listing');
  assert.deepEqual(summaryOf(event), summaryOf(truth));
  return event;
}

test('an unchanged apps.d differs in nothing: apps, a conflict, a misnamed, ignored and secrets entries', async (t) => {
  const { f } = await scannedWith(t, ['a.yml', 'b.yaml', 'c.yml', 'c.yaml', 'Bad_Name.yml', 'a.yml.swp', '.hidden.yml', 'a.env', 'notes.txt']);
  assert.deepEqual(await differencesOf(f), []);
  await f.list();
  assert.deepEqual(await differencesOf(f), [], 'nor after another full scan');
});

test('no scan yet, or apps.d cannot be listed: undefined (a full scan is due); called during the first scan, it waits for it', async (t) => {
  const f = await makeFixture(t, { settleMs: 0, wallNow: later });
  await f.put('a.yml', 'a\n');
  assert.equal(await f.scanner.differences(), undefined, 'never scanned');
  // Called while the first scan is under way, it waits for it: what it looked at is known then.
  const [first, names] = await Promise.all([f.list(), f.scanner.differences()]);
  assert.deepEqual(first.entries.map((e) => e.name), ['a']);
  assert.deepEqual(names && [...names], []);
  await rename(f.dir, join(f.root, 'elsewhere'));
  assert.equal(await f.scanner.differences(), undefined, 'apps.d is gone');
});

test('a file created with no event is named', async (t) => {
  const { f, before } = await scannedWith(t, ['a.yml']);
  await f.put('new.yml', 'n: 1\n');
  await resync(f, before, ['new.yml']);
  assert.deepEqual(await differencesOf(f), [], 'taken in by the hinted pass');
});

test('a second file for an app (a conflict) and a deleted file are named', async (t) => {
  const { f, before } = await scannedWith(t, ['a.yml', 'b.yml', 'c.yml']);
  await f.put('a.yaml', 'a: 2\n');
  await unlink(join(f.dir, 'b.yml'));
  const event = await resync(f, before, ['a.yaml', 'b.yml']);
  await unlink(join(f.dir, 'a.yml'));
  await resync(f, event, ['a.yml']);
});

test('content rewritten with the same size and mtime right after it was read is named (the racy rule)', async (t) => {
  const wall = { offset: 5000 };
  const { f } = await scannedWith(t, ['calm.yml'], () => Date.now() + wall.offset);
  // web.yml is read now, within a second of its last change: its stat cannot prove the read.
  wall.offset = 0;
  const path = await f.put('web.yml', 'a: 1\n');
  const before = await f.scanner.scan(only('web.yml'));
  assert.ok(before.kind === 'listing');
  assert.deepEqual(await differencesOf(f), ['web.yml'], 'named even with no change, calm.yml (read late) is not');
  const { atime, mtime } = await stat(path);
  await writeFile(path, 'a: 2\n');
  await utimes(path, atime, mtime);
  await resync(f, before, ['web.yml']);
});

test('a chmod making a file writable by others is named; a refused file is named on every resync', async (t) => {
  const { f, before } = await scannedWith(t, ['a.yml', 'b.yml']);
  await chmod(join(f.dir, 'a.yml'), 0o666);
  const event = await resync(f, before, ['a.yml']);
  assert.equal(event.entries[0]?.state, 'refused');
  assert.deepEqual(await differencesOf(f), ['a.yml'], 'a look without a kept read is not proved by a stat');
  await chmod(join(f.dir, 'a.yml'), 0o644);
  await resync(f, event, ['a.yml']);
  assert.deepEqual(await differencesOf(f), []);
});

test('a chown to another owner is named', { skip: owner !== 0 && 'needs root to chown' }, async (t) => {
  const { f, before } = await scannedWith(t, ['a.yml', 'b.yml']);
  await chown(join(f.dir, 'b.yml'), 4242, 4242);
  const event = await resync(f, before, ['b.yml']);
  assert.ok(event.entries[1]?.state === 'refused' && event.entries[1].code === 'APP_OWNER');
});

test('renames are named: an app renamed, and a new version renamed over an app (a new inode)', async (t) => {
  const { f, before } = await scannedWith(t, ['a.yml', 'b.yml']);
  await rename(join(f.dir, 'a.yml'), join(f.dir, 'z.yml'));
  const event = await resync(f, before, ['a.yml', 'z.yml']);
  // The same size, and the mtime put back: only the inode (and ctime) tell.
  const path = join(f.dir, 'b.yml');
  const { atime, mtime } = await stat(path);
  await f.put('.b.yml.tmp', 'b.ym!\n');
  await utimes(join(f.dir, '.b.yml.tmp'), atime, mtime);
  await rename(join(f.dir, '.b.yml.tmp'), path);
  await resync(f, event, ['b.yml']);
});

test('a new misnamed file is named (then warned about once); one removed is named', async (t) => {
  const { f, before } = await scannedWith(t, ['a.yml', 'Old_Name.yml']);
  await f.put('New_Name.yml', 'x: 1\n');
  await f.put('a.yml.swp', 'ignored\n');
  const event = await resync(f, before, ['New_Name.yml']);
  assert.deepEqual(event.misnamed.map((m) => [m.file, m.firstSeen]), [['New_Name.yml', true], ['Old_Name.yml', false]]);
  await unlink(join(f.dir, 'Old_Name.yml'));
  await resync(f, event, ['Old_Name.yml']);
});

test('a file still settling is not named (every event pass looks at it) until it settles and is changed', async (t) => {
  const f = await makeFixture(t, { settleMs: 1000, wallNow: later });
  await f.put('a.yml', 'a: 1\n');
  await f.list();
  assert.deepEqual(await differencesOf(f), []);
  f.clock.t += f.settleMs;
  const settled = await f.scanner.scan(only());
  assert.ok(settled.kind === 'listing' && settled.entries[0]?.state === 'settled');
  await f.put('a.yml', 'a: 2\n');
  assert.deepEqual(await differencesOf(f), ['a.yml'], 'settled: proved by its stat, so a change is named');
});

test('run beside scans, it throws nothing and names a change made before it started', async (t) => {
  const files = Array.from({ length: 300 }, (_, i) => `app-${i}.yml`);
  const { f, before } = await scannedWith(t, files);
  await f.put('app-150.yml', 'changed with no event\n');
  await f.put('app-new.yml', 'new with no event\n');
  // Called while an event pass that does not look at them is under way.
  const [quiet, quietNames] = await Promise.all([f.scanner.scan(only('app-7.yml')), f.scanner.differences()]);
  assert.ok(quiet.kind === 'listing');
  assert.deepEqual(summaryOf(quiet), summaryOf(before), 'the event pass saw neither change');
  assert.deepEqual([...(quietNames ?? [])].sort(), ['app-150.yml', 'app-new.yml']);
  // An event pass that looks at every file again starts while it lists and stats.
  await f.put('app-299.yml', 'changed again\n');
  const running = f.scanner.differences();
  const busy = await f.scanner.scan(only(...files));
  const busyNames = await running;
  assert.ok(busy.kind === 'listing' && busyNames !== undefined);
  assert.ok(busyNames.has('app-new.yml'), 'not hinted to that pass, so not taken in');
  const event = await f.scanner.scan(only(...busyNames));
  assert.ok(event.kind === 'listing');
  assert.deepEqual(summaryOf(event), summaryOf(await fullScan(f)));
});
