import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { initJournalPath, readInitJournal, recordInitStep } from '../../src/init/journal.ts';
import { InitError } from '../../src/init/errors.ts';
import { snapshotTree, tempDir } from './helpers.ts';

test('a missing journal reads as empty', async (t) => {
  const dir = join(await tempDir(t), 'state');
  assert.deepEqual(await readInitJournal(dir), { version: 1, steps: {} });
});

test('recording a step writes it; recording the same result again writes nothing', async (t) => {
  const root = await tempDir(t);
  const dir = join(root, 'state');
  let now = Date.parse('2026-11-25T12:00:00Z');
  assert.equal(await recordInitStep(dir, 'image', { name: 'dstack-0.5.11', pin: 'ab' }, () => now), true);
  assert.equal(await recordInitStep(dir, 'render', { kms_port: 9201 }, () => now), true);
  const before = await snapshotTree(root);

  now += 60_000;
  assert.equal(await recordInitStep(dir, 'image', { pin: 'ab', name: 'dstack-0.5.11' }, () => now), false);
  assert.deepEqual(await snapshotTree(root), before);

  assert.equal(await recordInitStep(dir, 'image', { name: 'dstack-0.5.12', pin: 'cd' }, () => now), true);
  const journal = await readInitJournal(dir);
  assert.deepEqual(journal.steps.image, { finished_at: '2026-11-25T12:01:00.000Z', detail: { name: 'dstack-0.5.12', pin: 'cd' } });
  assert.deepEqual(journal.steps.render?.detail, { kms_port: 9201 });
  assert.match(await readFile(initJournalPath(dir), 'utf8'), /\n$/);
});

test('a journal that is not JSON or not a journal is an INIT_JOURNAL error', async (t) => {
  const dir = join(await tempDir(t), 'state');
  await mkdir(dir);
  for (const text of ['{"version": 1, "steps": ', '{"version": 2, "steps": {}}', '{"version": 1, "steps": {"bogus": {}}}']) {
    await writeFile(initJournalPath(dir), text);
    const err = await readInitJournal(dir).catch((e: unknown) => e);
    assert.ok(err instanceof InitError, text);
    assert.equal(err.code, 'INIT_JOURNAL');
    assert.match(err.message, /init\.json/);
  }
});
