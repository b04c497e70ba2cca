import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStateStore } from '../../src/state/store.ts';
import type { AppRecord } from '../../src/state/record.ts';
import { defer } from '../helpers/cleanup.ts';
import { waitUntil } from '../helpers/harness.ts';

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'state-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  return dir;
}

const hash = createHash('sha256').update('compose').digest('hex');
const record: AppRecord = {
  name: 'web',
  file: 'web.yml',
  appId: hash.slice(0, 40),
  vmId: 'f6c6b1a2-0000-4000-8000-000000000001',
  phase: 'running',
  appliedHash: hash,
  registeredHashes: [hash],
};

test('a saved record loads back equal, from <state_dir>/apps/<name>.json, mode 0600', async (t) => {
  const dir = await tempDir(t);
  const store = await openStateStore(dir);
  assert.equal(store.dir, join(dir, 'apps'));
  assert.equal(await store.load('web'), undefined);
  await store.save(record);
  assert.deepEqual(await store.load('web'), record);
  const file = join(dir, 'apps', 'web.json');
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  const onDisk = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  assert.equal(onDisk.version, 1);
  const withIntent: AppRecord = { ...record, phase: 'updating', intent: { op: 'upgrade', toHash: 'b'.repeat(64), startedAt: 1_700_000_000_000 } };
  await store.save(withIntent);
  assert.deepEqual(await store.load('web'), withIntent);
  await store.save({ ...withIntent, intent: undefined, lastError: undefined });
  const { intent: _cleared, ...finished } = withIntent;
  assert.deepEqual(await store.load('web'), finished, 'a cleared intent is gone from the file');
});

test('loadAll returns every record sorted by name and skips files that are not records', async (t) => {
  const dir = await tempDir(t);
  const store = await openStateStore(dir);
  await store.save({ ...record, name: 'zeta' });
  await store.save({ ...record, name: 'alpha' });
  await writeFile(join(store.dir, 'README'), 'not a record');
  await writeFile(join(store.dir, 'Bad_Name.json'), '{}');
  assert.deepEqual(await store.loadAll().then(({ records, unreadable }) => [records.map((r) => r.name), unreadable]), [['alpha', 'zeta'], []]);
});

test('rule 18: a corrupt record is an error naming the file, never silently dropped', async (t) => {
  const dir = await tempDir(t);
  const store = await openStateStore(dir);
  await store.save({ ...record, name: 'good' });
  const file = join(store.dir, 'web.json');
  const cases: Array<[string, RegExp]> = [
    ['{"name":"web"', /not JSON/],
    [JSON.stringify({ ...record, version: 1, phase: 'flying' }), /phase/],
    [JSON.stringify({ ...record, version: 0 }), /version/],
    [JSON.stringify({ ...record, version: 1, extra: true }), /extra/],
    [JSON.stringify({ ...record, version: 1, name: 'api' }), /names app "api"/],
  ];
  for (const [text, why] of cases) {
    await writeFile(file, text);
    await assert.rejects(store.load('web'), (err: unknown) => {
      assert.ok(err instanceof Error && 'code' in err && err.code === 'STATE_CORRUPT', String(err));
      assert.ok(err.message.startsWith(`${file}: corrupt state record`), err.message);
      assert.match(err.message, why);
      assert.ok(err.message.includes(`mv ${file} ${file}.bad`), err.message);
      return true;
    });
    const { unreadable } = await store.loadAll();
    assert.deepEqual(unreadable.map((u) => [u.name, u.file, u.error.code]), [['web', file, 'STATE_CORRUPT']]);
    assert.match(unreadable[0]!.error.message, why);
  }
});

test('issue 13: loadAll returns the good records and reports a garbage and a newer-version record beside them', async (t) => {
  const dir = await tempDir(t);
  const store = await openStateStore(dir);
  await store.save({ ...record, name: 'alpha' });
  await store.save({ ...record, name: 'zeta' });
  const garbage = join(store.dir, 'm1.json');
  const future = join(store.dir, 'm2.json');
  await writeFile(garbage, '\u0000\u0001 not a record');
  await writeFile(future, JSON.stringify({ ...record, name: 'm2', version: 7, newField: 'from a later release' }));
  const { records, unreadable } = await store.loadAll();
  assert.deepEqual(records.map((r) => r.name), ['alpha', 'zeta']);
  assert.deepEqual(unreadable.map((u) => [u.name, u.file, u.error.code]), [['m1', garbage, 'STATE_CORRUPT'], ['m2', future, 'STATE_NEWER']]);
  const newer = unreadable[1]!.error.message;
  assert.ok(newer.startsWith(`${future}: state record written by a newer dstack-supervisor (version 7`), newer);
  assert.doesNotMatch(newer, /corrupt/);
  await assert.rejects(store.load('m2'), { code: 'STATE_NEWER' });
});

test('save refuses an invalid record or name; remove is idempotent', async (t) => {
  const dir = await tempDir(t);
  const store = await openStateStore(dir);
  await assert.rejects(store.save({ ...record, phase: 'flying' } as unknown as AppRecord), { code: 'STATE_INVALID' });
  await assert.rejects(store.save({ ...record, name: '../etc/passwd' }), { code: 'STATE_INVALID' });
  await assert.rejects(store.load('../x'), { code: 'STATE_INVALID' });
  await store.save(record);
  await store.remove('web');
  await store.remove('web');
  assert.equal(await store.load('web'), undefined);
  assert.deepEqual(await readdir(store.dir), []);
});

test('opening the store removes temp files a crashed write left behind', async (t) => {
  const dir = await tempDir(t);
  const store = await openStateStore(dir);
  await store.save(record);
  await writeFile(join(store.dir, '.web.json.tmp-999-0000'), '{"half');
  await openStateStore(dir);
  assert.deepEqual(await readdir(store.dir), ['web.json']);
});

// Start save-loop.ts, let it write for a random moment, SIGKILL it; resolves once it is dead.
function killMidWrite(dir: string, delayMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [new URL('./save-loop.ts', import.meta.url).pathname, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.once('data', () => setTimeout(() => child.kill('SIGKILL'), delayMs));
    child.once('error', reject);
    child.once('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`save-loop exited ${code}`))));
  });
}

test('rule 18: kill -9 at random instants leaves every record whole and never older', async (t) => {
  const dir = await tempDir(t);
  let last = 0;
  for (let round = 0; round < 10; round += 1) {
    await killMidWrite(dir, Math.floor(Math.random() * 40));
    const store = await openStateStore(dir);
    const { records, unreadable } = await store.loadAll();
    assert.deepEqual(unreadable, [], 'no record is left half written');
    const names = records.map((r) => r.name);
    assert.ok(names.includes('web') && names.includes('api'), names.join());
    for (const r of records.filter((x) => x.name !== 'tmp')) {
      const step = r.intent?.startedAt ?? 0;
      assert.ok(step >= last, `record ${r.name} went back from step ${last} to ${step}`);
      assert.equal(r.lastError?.length, (step * 997) % 20_000, 'the record is the whole of one write');
    }
    last = Math.min(...records.filter((x) => x.name !== 'tmp').map((r) => r.intent?.startedAt ?? 0));
    assert.deepEqual((await readdir(store.dir)).filter((n) => n.startsWith('.')), [], 'no temp file survives a reopen');
  }
});

// Issue 18: a resync's full load lets an event pass or a changed app's reconcile go first.
test('a full load reads each chunk of 64 records only after its pace', async (t) => {
  const dir = await tempDir(t);
  const store = await openStateStore(dir);
  for (let i = 0; i < 70; i++) await store.save({ ...record, name: `app-${i}` });
  const reader = await openStateStore(dir);
  let paces = 0;
  let release = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  let done = false;
  const loading = reader.loadAll({ recheck: true, pace: () => (++paces === 2 ? held : Promise.resolve()) }).then((all) => ((done = true), all));
  await waitUntil(() => paces === 2, 'the second chunk asking for its pace', 10_000);
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  assert.equal(done, false, 'and waits for it');
  const read = Array.from({ length: 70 }, (_, i) => reader.peek(`app-${i}`)).filter((k) => k !== undefined).length;
  assert.equal(read, 64, 'the second chunk not read yet');
  release();
  assert.equal((await loading).records.length, 70);
});
