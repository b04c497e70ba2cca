// One log entry as a datagram of journald's native protocol (systemd.journal-fields(7); the
// format is documented at systemd.io/JOURNAL_NATIVE_PROTOCOL): `NAME=value\n` per field, and for
// a value holding a newline `NAME\n`, its byte length as a 64-bit little-endian integer, the
// bytes and `\n`.
import type { LogEntry } from './entry.ts';

// What `journalctl -t` and the syslog-style output name us by; the same for every command.
const SYSLOG_IDENTIFIER = 'dstack-supervisor';

const NEWLINE = Buffer.from('\n');

function encodeField(name: string, value: string): Buffer[] {
  if (!value.includes('\n')) return [Buffer.from(`${name}=${value}\n`)];
  const data = Buffer.from(value);
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(data.length));
  return [Buffer.from(`${name}\n`), size, data, NEWLINE];
}

// The datagram for `entry`: MESSAGE (the sentence), PRIORITY, SYSLOG_IDENTIFIER, then its fields.
export function encodeJournalEntry(entry: LogEntry): Buffer {
  const fields: Array<readonly [string, string]> = [
    ['MESSAGE', entry.msg],
    ['PRIORITY', String(entry.priority)],
    ['SYSLOG_IDENTIFIER', SYSLOG_IDENTIFIER],
    ...entry.fields,
  ];
  return Buffer.concat(fields.flatMap(([name, value]) => encodeField(name, value)));
}
