// Issue 18: an event pass starts from the last scan and looks only at the entries the watcher
// named (and the candidates still settling): apps.d is not listed, the entries of untouched files
// are the very objects of the last scan, and an entry created or deleted with no event waits for
// the next full scan.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Recheck } from '../../src/appsdir/scan.ts';
import { entryOf, makeFixture, settle, settledText, type Fixture, type Listing } from './scan-fixture.ts';

const only = (...names: string[]): Recheck => ({ all: false, names: new Set(names) });

async function eventPass(f: Fixture, ...names: string[]): Promise<Listing> {
  const result = await f.scanner.scan(only(...names));
  assert.equal(result.kind, 'listing', result.kind === 'dir-error' ? result.message : '');
  return result as Listing;
}

const namesOf = (l: Listing) => l.entries.map((e) => e.name);

// A fixture whose apps.d holds `files` (each file's text is its name), scanned until they settled.
async function settledWith(t: Parameters<typeof makeFixture>[0], ...files: string[]): Promise<{ f: Fixture; before: Listing }> {
  const f = await makeFixture(t);
  for (const file of files) await f.put(file, `${file}\n`);
  return { f, before: await settle(f) };
}

test('an event pass keeps the entry objects of untouched files and gives the hinted one a new entry', async (t) => {
  const { f, before } = await settledWith(t, 'a.yml', 'b.yml', 'c.yml');
  await f.put('b.yml', 'b: 2\n');
  const event = await eventPass(f, 'b.yml');
  assert.equal(entryOf(event, 'a'), entryOf(before, 'a'), 'a: the same object');
  assert.equal(entryOf(event, 'c'), entryOf(before, 'c'), 'c: the same object');
  assert.equal(entryOf(event, 'b').state, 'unsettled', 'b was looked at');
  f.clock.t += f.settleMs;
  const settled = await eventPass(f);
  assert.equal(settledText(settled, 'b'), 'b: 2\n', 'a settling file is looked at with no event');
  assert.equal(entryOf(settled, 'a'), entryOf(before, 'a'));
  assert.deepEqual(namesOf(settled), ['a', 'b', 'c']);
  assert.equal(entryOf(await eventPass(f), 'b'), entryOf(settled, 'b'), 'once settled, b is kept as it is too');
});

test('a file created with no event is not seen by an event pass, only by the next full scan; a named one is', async (t) => {
  const { f } = await settledWith(t, 'a.yml');
  await f.put('missed.yml', 'm: 1\n');
  await f.put('named.yml', 'n: 1\n');
  const event = await eventPass(f, 'named.yml');
  assert.deepEqual(namesOf(event), ['a', 'named'], 'named.yml is new, missed.yml waits');
  assert.equal(entryOf(event, 'named').state, 'unsettled');
  const full = await f.list();
  assert.deepEqual(namesOf(full), ['a', 'missed', 'named']);
});

test('a hinted new file takes its place in directory order', async (t) => {
  const { f } = await settledWith(t, 'a.yml', 'c.yml', 'a-b.yml');
  await f.put('b.yml', 'x: 1\n');
  await f.put('a-a.yml', 'x: 1\n');
  await f.put('z.yml', 'x: 1\n');
  const event = await eventPass(f, 'b.yml', 'a-a.yml', 'z.yml');
  // Sorted by file name, as a full scan lists them ("a-b.yml" < "a.yml").
  assert.deepEqual(namesOf(event), namesOf(await f.list()));
  assert.deepEqual(namesOf(event), ['a-a', 'a-b', 'a', 'b', 'c', 'z']);
});

test('a hinted deleted file disappears; one deleted with no event stays until the next full scan', async (t) => {
  const { f, before } = await settledWith(t, 'a.yml', 'b.yml', 'c.yml');
  await unlink(join(f.dir, 'a.yml'));
  await unlink(join(f.dir, 'b.yml'));
  const event = await eventPass(f, 'b.yml');
  assert.deepEqual(namesOf(event), ['a', 'c']);
  assert.equal(entryOf(event, 'a'), entryOf(before, 'a'), 'a is taken as the last scan saw it');
  assert.deepEqual(namesOf(await f.list()), ['c']);
});

test('a hint for a file that came and went, or for NAME.env, changes no entry', async (t) => {
  const { f, before } = await settledWith(t, 'a.yml');
  const event = await eventPass(f, 'gone.yml', 'a.env', '.a.yml.swp');
  assert.equal(event.entries.length, 1);
  assert.equal(entryOf(event, 'a'), entryOf(before, 'a'));
});

test('rule 3 through hints: a second file for an app makes a conflict, and removing it ends it', async (t) => {
  const { f, before } = await settledWith(t, 'web.yml', 'z.yml');
  await f.put('web.yaml', 'a: 2\n');
  const conflict = await eventPass(f, 'web.yaml');
  const web = entryOf(conflict, 'web');
  assert.ok(web.state === 'conflict');
  assert.deepEqual(web.files, ['web.yaml', 'web.yml']);
  assert.deepEqual(namesOf(conflict), ['web', 'z']);
  assert.equal(entryOf(conflict, 'z'), entryOf(before, 'z'));
  assert.equal(entryOf(await eventPass(f, 'z.yml'), 'web'), web, 'a conflict no event touched is kept as it is');
  assert.equal(entryOf(await eventPass(f, 'web.yml'), 'web').state, 'conflict', 'an event for one of its files: still both');
  await unlink(join(f.dir, 'web.yaml'));
  const survivor = await eventPass(f, 'web.yaml');
  assert.equal(entryOf(survivor, 'web').state, 'unsettled', 'the survivor settles like a new file');
  f.clock.t += f.settleMs;
  assert.equal(settledText(await eventPass(f), 'web'), 'web.yml\n');
});

test('rule 2 through hints: a misnamed file is warned about once, and forgotten when it goes', async (t) => {
  const { f } = await settledWith(t, 'a.yml');
  await f.put('My_App.yml', 'x: 1\n');
  await f.put('Missed.yml', 'x: 1\n');
  const first = await eventPass(f, 'My_App.yml');
  assert.deepEqual(first.misnamed.map((m) => [m.file, m.firstSeen]), [['My_App.yml', true]], 'Missed.yml had no event');
  assert.deepEqual((await eventPass(f)).misnamed.map((m) => [m.file, m.firstSeen]), [['My_App.yml', false]]);
  assert.deepEqual((await f.list()).misnamed.map((m) => [m.file, m.firstSeen]), [['Missed.yml', true], ['My_App.yml', false]]);
  await unlink(join(f.dir, 'My_App.yml'));
  assert.deepEqual((await eventPass(f, 'My_App.yml')).misnamed.map((m) => m.file), ['Missed.yml']);
  await f.put('My_App.yml', 'x: 1\n');
  assert.equal((await eventPass(f, 'My_App.yml')).misnamed.find((m) => m.file === 'My_App.yml')?.firstSeen, true, 'back: new again');
});

test('an event pass that finds apps.d replaced, or has no scan to start from, lists it in full', async (t) => {
  const f = await makeFixture(t);
  await f.put('a.yml', 'a: 1\n');
  assert.deepEqual(namesOf(await eventPass(f)), ['a'], 'the first scan');
  await settle(f);
  await rename(f.dir, join(f.root, 'apps.d.old'));
  await mkdir(f.dir, { mode: 0o755 });
  await f.put('b.yml', 'b: 1\n');
  const replaced = await eventPass(f);
  assert.equal(replaced.replaced, true);
  assert.deepEqual(namesOf(replaced), ['b']);
});
