import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { chooseLogFormat, isJournalStream } from '../../src/log/format.ts';
import { defer } from '../helpers/cleanup.ts';

// Two files open for writing, and JOURNAL_STREAM as systemd would set it for the first
// (device and inode in decimal, from stat(1) rather than from the code under test).
async function streams(t: Parameters<typeof defer>[0]): Promise<{ journalStream: string; journalFd: number; otherFd: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'dstack-journal-stream-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  const [journal, other] = [join(dir, 'journal'), join(dir, 'other')];
  await writeFile(journal, '');
  const journalFd = openSync(journal, 'a');
  defer(t, () => closeSync(journalFd));
  const otherFd = openSync(other, 'w');
  defer(t, () => closeSync(otherFd));
  const journalStream = (await execa('stat', ['-c', '%d:%i', journal])).stdout.trim();
  return { journalStream, journalFd, otherFd };
}

test('issue 15: JOURNAL_STREAM names stdout only when it matches the device and inode of that fd (systemd.exec(5))', async (t) => {
  const { journalStream, journalFd, otherFd } = await streams(t);
  assert.equal(isJournalStream(journalStream, journalFd), true);
  assert.equal(isJournalStream(journalStream, otherFd), false, 'inherited by a process whose stdout goes elsewhere');
  assert.equal(isJournalStream(undefined, journalFd), false);
  assert.equal(isJournalStream('', journalFd), false);
  assert.equal(isJournalStream('garbage', journalFd), false);
  assert.equal(isJournalStream(journalStream, 9999), false, 'a closed fd');
});

test('issue 15: --log-format wins; without it journal under systemd\'s journal stream, else text', () => {
  assert.equal(chooseLogFormat('json', { JOURNAL_STREAM: 'anything' }), 'json');
  assert.equal(chooseLogFormat(undefined, {}), 'text');
  assert.equal(chooseLogFormat(undefined, { JOURNAL_STREAM: '0:0' }), 'text', 'stdout of this test is not that stream');
});
