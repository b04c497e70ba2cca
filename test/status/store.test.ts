import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  readAllStatuses,
  readSupervisorStatus,
  removeAppStatus,
  STATUS_READ,
  STATUS_WRITE,
  statusDir,
  writeAppStatus,
  writeSupervisorStatus,
} from '../../src/status/store.ts';
import { countPhases } from '../../src/status/summary.ts';
import type { AppStatus } from '../../src/status/schema.ts';
import { sampleStatus } from './sample.ts';
import { defer } from '../helpers/cleanup.ts';

async function stateDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'status-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('rule 21: an app status is one JSON file per app under state_dir/status', async (t) => {
  const state = await stateDir(t);
  const status = sampleStatus();
  await writeAppStatus(state, status);
  assert.deepEqual(await readdir(statusDir(state)), ['shop.json']);
  const onDisk = JSON.parse(await readFile(join(state, 'status', 'shop.json'), 'utf8')) as AppStatus;
  assert.equal(onDisk.phase, 'running');
  assert.deepEqual(onDisk, status);
  assert.deepEqual((await readAllStatuses(state)).apps, [status]);
});

test('a status that breaks the schema is refused and nothing is written', async (t) => {
  const state = await stateDir(t);
  const bad = { ...sampleStatus(), phase: 'exploded' } as unknown as AppStatus;
  await assert.rejects(writeAppStatus(state, bad), { code: STATUS_WRITE });
  await assert.rejects(writeAppStatus(state, sampleStatus({ compose_hash: 'abc' })), { code: STATUS_WRITE });
  assert.deepEqual((await readAllStatuses(state)).apps, []);
});

test('a reader polling the file never sees a torn status while it is rewritten', async (t) => {
  const state = await stateDir(t);
  await writeAppStatus(state, sampleStatus({ phase: 'pending' }));
  const file = join(statusDir(state), 'shop.json');
  let writing = true;
  const writer = (async () => {
    const errors = Array.from({ length: 150 }, (_, i) => `attempt ${i}: ${'x'.repeat(i * 40)}`);
    for (const last_error of errors) await writeAppStatus(state, sampleStatus({ phase: 'failed', last_error }));
    writing = false;
  })();
  let reads = 0;
  while (writing) {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as AppStatus;
    assert.ok(parsed.phase === 'pending' || parsed.phase === 'failed');
    reads++;
  }
  await writer;
  assert.ok(reads > 0);
  assert.deepEqual(await readdir(statusDir(state)), ['shop.json'], 'no temp file is left behind');
});

test('listing skips temp and foreign files, reports broken ones, and keeps the rest', async (t) => {
  const state = await stateDir(t);
  await writeAppStatus(state, sampleStatus({ app: 'blog', file: 'blog.yml' }));
  await writeAppStatus(state, sampleStatus());
  const dir = statusDir(state);
  await writeFile(join(dir, '.shop.json.tmp-123-abcd'), '{"half":');
  await writeFile(join(dir, 'README'), 'not a status');
  await writeFile(join(dir, 'My_App.json'), '{}');
  await writeFile(join(dir, 'broken.json'), '{"app":"broken"');
  await writeSupervisorStatus(state, { phase: 'ready', watcher: 'ok', counts: countPhases([]), updated_at: '2026-01-01T00:00:00.000Z' });
  const listing = await readAllStatuses(state);
  assert.deepEqual(listing.apps.map((s) => s.app), ['blog', 'shop']);
  assert.deepEqual(listing.unreadable.map((u) => u.file), [join(dir, 'broken.json')]);
});

test('no status directory means no apps yet, not an error', async (t) => {
  const state = await stateDir(t);
  assert.deepEqual(await readAllStatuses(join(state, 'never-created')), { apps: [], unreadable: [] });
  assert.equal(await readSupervisorStatus(state), null);
});

test('removing a status file is idempotent', async (t) => {
  const state = await stateDir(t);
  await writeAppStatus(state, sampleStatus());
  await removeAppStatus(state, 'shop');
  await removeAppStatus(state, 'shop');
  assert.deepEqual(await readdir(statusDir(state)), []);
});

test('the supervisor status round-trips through _supervisor.json', async (t) => {
  const state = await stateDir(t);
  const counts = countPhases([{ phase: 'running' }, { phase: 'running' }, { phase: 'invalid' }]);
  const status = { phase: 'ready', watcher: 'degraded', counts, updated_at: '2026-01-01T00:00:00.000Z' } as const;
  await writeSupervisorStatus(state, status);
  assert.deepEqual(await readdir(statusDir(state)), ['_supervisor.json']);
  assert.deepEqual(await readSupervisorStatus(state), status);
  await writeFile(join(statusDir(state), '_supervisor.json'), '{"phase":"ready"}');
  await assert.rejects(readSupervisorStatus(state), { code: STATUS_READ });
});

test('status files are created world-readable for config-management tools', async (t) => {
  const state = await stateDir(t);
  await writeAppStatus(state, sampleStatus());
  assert.equal((await stat(join(statusDir(state), 'shop.json'))).mode & 0o777, 0o644);
});
