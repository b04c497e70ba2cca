import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readJournalLines } from '../../src/systemd/journal.ts';
import { makeTestDir } from './fixture.ts';
import { defer } from '../helpers/cleanup.ts';

test('readJournalLines gives an empty list when journalctl is not installed', async (t) => {
  const emptyBin = await makeTestDir(t);
  const saved = process.env['PATH'];
  process.env['PATH'] = emptyBin;
  defer(t, () => {
    process.env['PATH'] = saved;
  });
  assert.deepEqual(await readJournalLines('dstack-vmm.service'), []);
});

test('readJournalLines leaves out journalctl\'s "-- No entries --" marker', async () => {
  const lines = await readJournalLines('never-logged-anything.service');
  assert.ok(!lines.includes('-- No entries --'));
});
