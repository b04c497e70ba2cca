// The supervisor's logger: pino JSON lines on stdout, each prefixed with the journald priority
// of its level. journald honours a leading `<N>` (SyslogLevelPrefix= defaults to yes), so
// `journalctl -p warning` filters by the level we logged at (docs/platform-notes.md §6, checked under
// systemd 252).
import { pino, type DestinationStream, type Level, type Logger } from 'pino';

export type { Logger, Level };

// pino level → syslog priority (sd-daemon(3)): crit 2, err 3, warning 4, info 6, debug 7.
export const JOURNAL_PRIORITY: Readonly<Record<Level, number>> = {
  fatal: 2,
  error: 3,
  warn: 4,
  info: 6,
  debug: 7,
  trace: 7,
};

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

export type LoggerOptions = {
  level: Level;
  // Where lines go; process.stdout (journald under systemd) when absent.
  stream?: DestinationStream;
};

// Create the logger; lines below `level` are dropped, the rest carry their `<N>` prefix.
export function createLogger(options: LoggerOptions): Logger {
  const out = options.stream ?? process.stdout;
  // dedupe: each line goes only to the entry of its own level, so it gets exactly one prefix.
  const streams = Object.entries(JOURNAL_PRIORITY).map(([level, priority]) => ({
    level: level as Level,
    stream: { write: (line: string) => out.write(`<${priority}>${line}`) },
  }));
  return pino(
    {
      level: options.level,
      // journald already records pid and host; keep lines short.
      base: null,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: SECRET_FIELDS.flatMap((name) => [name, `*.${name}`]), censor: REDACTED },
    },
    pino.multistream(streams, { dedupe: true }),
  );
}
