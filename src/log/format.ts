// Which form the log takes: native journal entries under systemd, readable lines in a terminal,
// pino's JSON lines for machines (`--log-format`, issue 15).
import { fstatSync } from 'node:fs';
import * as z from 'zod';

// journal: one native journal entry per log call, its fields queryable (`journalctl APP=web`);
// text: `2026-12-05T17:00:00Z info  web: deploy …` lines; json: `<6>{"level":"info",…}` lines.
export const LOG_FORMATS = ['journal', 'text', 'json'] as const;
export const LogFormatSchema = z.enum(LOG_FORMATS);
export type LogFormat = z.infer<typeof LogFormatSchema>;

// `journal, text or json`, for help and usage errors.
export const LOG_FORMAT_LIST = `${LOG_FORMATS.slice(0, -1).join(', ')} or ${LOG_FORMATS.at(-1)}`;

// True when `fd` is the stream systemd connected to the journal: systemd.exec(5) documents
// JOURNAL_STREAM=<device>:<inode> of that stream, which a child inherits even when its own
// stdout goes elsewhere, so the variable alone does not say it.
export function isJournalStream(journalStream: string | undefined, fd = 1): boolean {
  if (!journalStream) return false;
  try {
    const stat = fstatSync(fd, { bigint: true });
    return journalStream === `${stat.dev}:${stat.ino}`;
  } catch {
    // fd closed: nothing of ours reaches the journal through it either.
    return false;
  }
}

// The format asked for, else journal when stdout is the journal, else text.
export function chooseLogFormat(requested: LogFormat | undefined, env: Readonly<Record<string, string | undefined>>): LogFormat {
  return requested ?? (isJournalStream(env.JOURNAL_STREAM) ? 'journal' : 'text');
}
