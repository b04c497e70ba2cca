// How `run` ends when it cannot start. A host that is not ready, a supervisor.toml that does not
// parse, or a KMS that init must not touch (changed after bootstrap, vanished) will not fix itself:
// such a start exits with EXIT_NEEDS_OPERATOR, which the unit lists in RestartPreventExitStatus=,
// so systemd leaves it `failed` instead of restarting it every few seconds; anything else (the VMM
// not up yet) exits 1 and is restarted.
import { describeError, SupervisorError } from '../errors.ts';
import { PreflightError, summarizePreflight } from '../init/errors.ts';
import type { Logger } from '../log/logger.ts';

// sysexits(3) EX_CONFIG: the configuration, or the host it describes, needs the operator.
export const EXIT_NEEDS_OPERATOR = 78;

// Failures a restart cannot fix, besides the preflight's.
const NEEDS_OPERATOR = new Set(['INIT_KMS_FROZEN', 'INIT_KMS_LOST', 'INIT_KMS_PORT', 'INIT_KMS_ONBOARD_DENIED', 'INIT_KMS_ONBOARD_UNTRUSTED']);

// Says why the start failed, one journal entry per problem and the summary on STATUS= (what
// `systemctl status` shows), and returns the exit status.
export async function reportFailedStart(err: unknown, log: Logger, status: (text: string) => Promise<void>): Promise<number> {
  if (err instanceof PreflightError) {
    for (const problem of err.problems) log.error({ CODE: err.code, CHECK: problem.check, DOCS: problem.docs }, `preflight: ${problem.what}`);
    const summary = summarizePreflight(err.problems);
    log.error({ CODE: err.code }, `${summary}; nothing was changed. Fix them, then: systemctl restart dstack-supervisor`);
    await status(summary);
    return EXIT_NEEDS_OPERATOR;
  }
  log.error({ err }, describeError(err));
  await status(`failed to start: ${firstLine(describeError(err))}`);
  return err instanceof SupervisorError && NEEDS_OPERATOR.has(err.code) ? EXIT_NEEDS_OPERATOR : 1;
}

// supervisor.toml cannot be used: nothing was started.
export async function reportBadConfig(err: unknown, log: Logger, status: (text: string) => Promise<void>): Promise<number> {
  const message = describeError(err);
  log.error(message);
  await status(`configuration invalid: ${firstLine(message)}`);
  return EXIT_NEEDS_OPERATOR;
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}
