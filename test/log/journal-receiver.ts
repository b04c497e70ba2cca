// journald's side of the native protocol for tests: a real datagram socket
// (../helpers/dgram-receiver.ts) whose datagrams are parsed as journald's
// server_process_native_message() parses them: per line, `NAME=value` when the line holds `=`,
// else NAME, a 64-bit little-endian length, that many bytes and `\n`.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defer } from '../helpers/cleanup.ts';
import { bindDatagramReceiver, type DatagramReceiver } from '../helpers/dgram-receiver.ts';

export type JournalField = [name: string, value: string];

// journal_field_valid(): A-Z, 0-9 and `_`, at most 64, not starting with a digit or `_`.
const FIELD_NAME = /^[A-Z][A-Z0-9_]{0,63}$/;

// The fields of one datagram, in order; throws on anything journald would not take whole.
export function decodeJournalEntry(datagram: Buffer): JournalField[] {
  const fields: JournalField[] = [];
  let at = 0;
  while (at < datagram.length) {
    const end = datagram.indexOf(0x0a, at);
    if (end < 0) throw new Error(`trailing bytes without a newline at ${at}`);
    const line = datagram.subarray(at, end).toString();
    const eq = line.indexOf('=');
    const name = eq < 0 ? line : line.slice(0, eq);
    if (!FIELD_NAME.test(name)) throw new Error(`invalid field name ${JSON.stringify(name)}`);
    if (eq >= 0) {
      fields.push([name, line.slice(eq + 1)]);
      at = end + 1;
      continue;
    }
    const size = Number(datagram.readBigUInt64LE(end + 1));
    const start = end + 1 + 8;
    if (datagram[start + size] !== 0x0a) throw new Error(`${name}: ${size} bytes not followed by a newline`);
    fields.push([name, datagram.subarray(start, start + size).toString()]);
    at = start + size + 1;
  }
  return fields;
}

export type JournalReceiver = {
  path: string;
  receiver: DatagramReceiver;
  // The next entry, its raw datagram beside its fields.
  next(timeoutMs?: number): Promise<{ raw: Buffer; fields: JournalField[] }>;
};

// A receiver bound in a fresh directory, removed with it when the test ends.
export async function startJournalReceiver(t: Parameters<typeof defer>[0], options: { paused?: boolean } = {}): Promise<JournalReceiver> {
  const dir = await mkdtemp(join(tmpdir(), 'dstack-journal-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'socket');
  const receiver = await bindDatagramReceiver(path, options);
  defer(t, () => receiver.close());
  return {
    path,
    receiver,
    async next(timeoutMs) {
      const raw = await receiver.next(timeoutMs);
      return { raw, fields: decodeJournalEntry(raw) };
    },
  };
}
