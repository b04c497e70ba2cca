// One log call as the journal and the text lines show it: the level, the time, the sentence and
// the structured fields under journal field names, read back from the JSON line pino wrote (so
// redaction and the error serializer have already run).
import type { Level } from 'pino';

// pino level → syslog priority (sd-daemon(3)): crit 2, err 3, warning 4, info 6, debug 7.
const JOURNAL_PRIORITY: Readonly<Record<Level, number>> = {
  fatal: 2,
  error: 3,
  warn: 4,
  info: 6,
  debug: 7,
  trace: 7,
};

export type LogEntry = {
  level: Level;
  priority: number;
  // ISO 8601, as pino stamped it.
  time: string;
  msg: string;
  // In the order they were logged (a child logger's bindings first); values as text.
  fields: ReadonlyArray<readonly [name: string, value: string]>;
};

// Keys pino writes itself; everything else is a field.
const PINO_KEYS = new Set(['level', 'time', 'msg']);

// journald's limit on a field name (systemd's journal_field_valid()).
const FIELD_NAME_MAX = 64;

// A key as a journal field name: upper case A-Z, 0-9 and `_`, camelCase split (`vmId` → VM_ID),
// not starting with `_` (journald reserves those for trusted fields) or a digit.
function journalFieldName(key: string): string | undefined {
  const name = key
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toUpperCase()
    .replace(/[^A-Z0-9_]/g, '_')
    .replace(/^[_0-9]+/, '')
    .slice(0, FIELD_NAME_MAX);
  return name === '' ? undefined : name;
}

// Values as journal data: text as is, numbers and booleans as written, arrays and objects nested
// deeper than one level as JSON. null and undefined are no field at all.
function valueText(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

// An object one level down is flattened (`{ err: { code } }` → ERR_CODE), so pino's serialized
// errors and `{ app: { name } }` stay queryable field by field.
function addField(fields: Array<readonly [string, string]>, key: string, value: unknown): void {
  const name = journalFieldName(key);
  if (name === undefined) return;
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [inner, innerValue] of Object.entries(value)) {
      const text = valueText(innerValue);
      const innerName = journalFieldName(`${name}_${inner}`);
      if (text !== undefined && innerName !== undefined) fields.push([innerName, text]);
    }
    return;
  }
  const text = valueText(value);
  if (text !== undefined) fields.push([name, text]);
}

// Read one line of pino's output (with the logger's level formatter: `"level":"info"`).
export function parseLogLine(line: string): LogEntry {
  const raw = JSON.parse(line) as Record<string, unknown>;
  const fields: Array<readonly [string, string]> = [];
  for (const [key, value] of Object.entries(raw)) if (!PINO_KEYS.has(key)) addField(fields, key, value);
  const level = raw.level as Level;
  return { level, priority: JOURNAL_PRIORITY[level], time: String(raw.time), msg: typeof raw.msg === 'string' ? raw.msg : '', fields };
}
