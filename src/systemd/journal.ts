import { execa } from 'execa';
import type { ReadJournal } from './types.ts';

const JOURNAL_LINES = 20;
// journalctl on a big journal can be slow; an error message must not wait on it for long.
const JOURNAL_TIMEOUT_MS = 5_000;

// Default journal reader: `journalctl -u NAME -n 20 --no-pager`. An empty list when journalctl
// is missing, fails or times out, because the journal only decorates an error already in hand.
export const readJournalLines: ReadJournal = async (unit) => {
  const result = await execa('journalctl', ['-u', unit, '-n', String(JOURNAL_LINES), '--no-pager'], {
    reject: false,
    timeout: JOURNAL_TIMEOUT_MS,
    stdin: 'ignore',
  });
  if (result.failed) return [];
  // journalctl says "-- No entries --" on stdout for a unit that never logged.
  return result.stdout.split('\n').filter((line) => line.trim() !== '' && line !== '-- No entries --');
};
