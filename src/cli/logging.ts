// The logger of the commands that log (run, init, destroy), configured alike: the level from
// DSTACK_SUPERVISOR_LOG_LEVEL, the format from --log-format, else journal when stdout is the
// journal, else text (../log/format.ts).
import { chooseLogFormat, LOG_FORMAT_LIST, LogFormatSchema } from '../log/format.ts';
import { createLogger, type Logger } from '../log/logger.ts';
import { usageError, type CommandSpec } from './args.ts';

// The logger, or the exit status of a usage error naming a `--log-format` it does not know.
export function commandLogger(name: string, spec: CommandSpec, format: string | undefined): { ok: true; log: Logger } | { ok: false; exitCode: number } {
  const requested = LogFormatSchema.optional().safeParse(format);
  if (!requested.success) return { ok: false, exitCode: usageError(name, spec, `--log-format must be ${LOG_FORMAT_LIST}, not '${format}'`) };
  const level = process.env.DSTACK_SUPERVISOR_LOG_LEVEL === 'debug' ? 'debug' : 'info';
  return { ok: true, log: createLogger({ level, format: chooseLogFormat(requested.data, process.env) }) };
}
