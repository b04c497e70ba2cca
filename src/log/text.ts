// Log entries as lines for people: `2026-12-05T17:00:00Z info  web: deploy 1a2b3c4d5e6f: new file
// FILE=/etc/dstack/apps.d/web.yaml`. The sentence says what happened; the fields it does not
// already say follow under their journal names, which are what `journalctl FIELD=value` takes.
import type { LogEntry } from './entry.ts';

// A value bare when it is one word, else JSON-quoted, so `KEY=value` pairs split unambiguously.
function quoted(value: string): string {
  return value !== '' && !/[\s"\\]/.test(value) ? value : JSON.stringify(value);
}

// The fields worth appending: not repeated by the sentence (APP, ACTION, REASON mostly are) and
// on one line (an error's stack is left to the json and journal forms).
function extraFields(entry: LogEntry): string {
  const shown = entry.fields.filter(([, value]) => !entry.msg.includes(value) && !value.includes('\n'));
  return shown.map(([name, value]) => ` ${name}=${quoted(value)}`).join('');
}

// The sentence and the extra fields on one line (a newline in the sentence is written `\n`).
export function describeEntry(entry: LogEntry): string {
  return `${entry.msg.replaceAll('\n', '\\n')}${extraFields(entry)}`;
}

// A terminal line: time to the second, the level in a column of five, the entry.
export function formatTextLine(entry: LogEntry): string {
  return `${entry.time.replace(/\.\d+Z$/, 'Z')} ${entry.level.padEnd(5)} ${describeEntry(entry)}`;
}
