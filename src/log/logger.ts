// The supervisor's logger: pino (levels, child bindings, secret redaction, error serialization)
// writing one entry per call in the format chosen (./format.ts):
// - journal: a native journal entry, so MESSAGE is the sentence and APP, FILE, ACTION … are
//   journal fields (`journalctl -u dstack-supervisor APP=web`); an entry that cannot be sent is
//   written to stdout instead (the journal's stream under systemd) as a `<N>`-prefixed line;
// - text: a readable line per entry (./text.ts);
// - json: pino's JSON line with a `<N>` prefix, which journald honours as the priority
//   (SyslogLevelPrefix= defaults to yes, docs/platform-notes.md §6, checked under systemd 252).
import { pino, type Level, type Logger } from 'pino';
import { parseLogLine, type LogEntry } from './entry.ts';
import { encodeJournalEntry } from './journal-entry.ts';
import { openJournalSender } from './journal-socket.ts';
import { describeEntry, formatTextLine } from './text.ts';
import type { LogFormat } from './format.ts';

export type { Logger, Level };

// Field names whose values are secrets (the NAME.env values, tokens): docs/design.md "values never
// appear in logs". pino's redact matches exact paths, so each name is listed at the top level
// and one level down (`{ app: { env } }`).
export const SECRET_FIELDS = [
  'env',
  'envs',
  'env_values',
  'encrypted_env',
  'secret',
  'secrets',
  'password',
  'token',
  'authorization',
] as const;

const REDACTED = '[redacted]';

type LineStream = { write(line: string): unknown };

export type LoggerOptions = {
  level: Level;
  // json when absent: the form tests and tools read.
  format?: LogFormat;
  // Where lines go (and journal entries that could not be sent); process.stdout when absent.
  stream?: LineStream;
  // The journal's native socket (journal format); journald's when absent.
  journalSocket?: string;
};

// The line journald's stream reads: `<N>` sets the priority, journald stamps the time.
function priorityLine(entry: LogEntry): string {
  return `<${entry.priority}>${describeEntry(entry)}\n`;
}

// The writer of each format, handed every line pino serialized.
function createWriter(format: LogFormat, out: LineStream, journalSocket: string | undefined): (line: string) => void {
  switch (format) {
    case 'json':
      return (line) => out.write(`<${parseLogLine(line).priority}>${line}`);
    case 'text':
      return (line) => out.write(`${formatTextLine(parseLogLine(line))}\n`);
    case 'journal': {
      const sender = openJournalSender(journalSocket);
      if (sender.problem !== undefined) out.write(`<4>native journal fields are off: ${sender.problem}; entries go to stdout\n`);
      return (line) => {
        const entry = parseLogLine(line);
        if (!sender.send(encodeJournalEntry(entry))) out.write(priorityLine(entry));
      };
    }
  }
}

// Create the logger; entries below `level` are dropped.
export function createLogger(options: LoggerOptions): Logger {
  const write = createWriter(options.format ?? 'json', options.stream ?? process.stdout, options.journalSocket);
  return pino(
    {
      level: options.level,
      // journald already records pid and host; keep lines short.
      base: null,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: SECRET_FIELDS.flatMap((name) => [name, `*.${name}`]), censor: REDACTED },
    },
    { write },
  );
}
