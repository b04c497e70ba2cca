// Issue 18: the record store answers an event pass from memory; its own writes update that
// memory, and a full load finds what anyone else did to the files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStateStore } from '../../src/state/store.ts';
import type { AppRecord } from '../../src/state/record.ts';
import { defer } from '../helpers/cleanup.ts';

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'state-memory-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  return dir;
}

const hash = createHash('sha256').update('compose').digest('hex');
const recordOf = (name: string): AppRecord => ({ name, file: `${name}.yml`, appId: hash.slice(0, 40), phase: 'running', appliedHash: hash, registeredHashes: [hash] });
const names = (loaded: { records: AppRecord[] }) => loaded.records.map((r) => r.name);

test('an event pass reads no record file: what someone else did is found by the next full load', async (t) => {
  const store = await openStateStore(await tempDir(t));
  await store.save(recordOf('alpha'));
  await store.save(recordOf('beta'));
  assert.deepEqual(names(await store.loadAll()), ['alpha', 'beta']);
  // A look at either file would find beta garbage and alpha moved aside.
  await writeFile(join(store.dir, 'beta.json'), 'garbage');
  await rename(join(store.dir, 'alpha.json'), join(store.dir, 'alpha.json.bad'));
  const event = await store.loadAll({ recheck: false });
  assert.deepEqual([names(event), event.unreadable], [['alpha', 'beta'], []]);
  const full = await store.loadAll({ recheck: true });
  assert.deepEqual(names(full), []);
  assert.deepEqual(full.unreadable.map((u) => [u.name, u.error.code]), [['beta', 'STATE_CORRUPT']]);
  assert.deepEqual((await store.loadAll({ recheck: false })).unreadable.map((u) => u.name), ['beta'], 'the full load is what the next event pass answers');
});

test('our own writes and removals are what the next event pass answers', async (t) => {
  const store = await openStateStore(await tempDir(t));
  await store.save(recordOf('alpha'));
  await store.loadAll();
  await store.save({ ...recordOf('gamma'), phase: 'deploying', appliedHash: undefined });
  await store.save({ ...recordOf('alpha'), phase: 'failed', lastError: 'boom' });
  await store.remove('beta');
  const event = await store.loadAll({ recheck: false });
  assert.deepEqual(event.records, [{ ...recordOf('alpha'), phase: 'failed', lastError: 'boom' }, { ...recordOf('gamma'), phase: 'deploying', appliedHash: undefined }].map((r) => JSON.parse(JSON.stringify(r))));
  await store.remove('alpha');
  assert.deepEqual(names(await store.loadAll({ recheck: false })), ['gamma']);
  assert.deepEqual(await store.loadAll({ recheck: false }), await store.loadAll({ recheck: true }), 'memory and disk agree');
});

test('the first load of a store reads the files even when asked for an event pass', async (t) => {
  const dir = await tempDir(t);
  await (await openStateStore(dir)).save(recordOf('alpha'));
  const fresh = await openStateStore(dir);
  assert.deepEqual(names(await fresh.loadAll({ recheck: false })), ['alpha']);
});

test('a record read within a second of its last change is read again; one read later is kept', async (t) => {
  const dir = await tempDir(t);
  const racy = await openStateStore(dir);
  await racy.save(recordOf('alpha'));
  const first = await racy.load('alpha');
  assert.notEqual(await racy.load('alpha'), first, 'read within a second of the change: read again');
  const later = await openStateStore(dir, { wallNow: () => Date.now() + 5000 });
  const kept = await later.load('alpha');
  assert.equal(await later.load('alpha'), kept, 'the same stat, read well after the change: kept');
  // A same-size rewrite by someone else changes the stat (ctime), so it is read whatever the clock.
  await writeFile(join(later.dir, 'alpha.json'), JSON.stringify({ version: 1, ...recordOf('alpha'), phase: 'pending' }, null, 2));
  assert.equal((await later.load('alpha'))?.phase, 'pending');
});

// Issue 18: the view an event pass gets is built again only when a record changed, so the
// managed apps derived from it are too (src/supervisor.ts); every change gives a new one.
test('loadAll gives the same view while no record changed, and a new one after each change', async (t) => {
  const store = await openStateStore(await tempDir(t));
  await store.save(recordOf('alpha'));
  const first = await store.loadAll({ recheck: true });
  assert.equal(await store.loadAll({ recheck: false }), first);
  await store.save(recordOf('bravo'));
  const second = await store.loadAll({ recheck: false });
  assert.notEqual(second, first);
  assert.deepEqual(names(second), ['alpha', 'bravo']);
  await store.remove('alpha');
  assert.deepEqual(names(await store.loadAll({ recheck: false })), ['bravo']);
  assert.deepEqual(names(first), ['alpha'], 'a view given out is never changed');
});
