// `dstack-supervisor resync [--config FILE] [--pid PID]`: ask the running service for a full
// resync now, as `systemctl reload dstack-supervisor` does: both send it SIGHUP (the unit's
// ExecReload= runs this command with systemd's $MAINPID). Without --pid the service is found by
// `<state_dir>/pid.json` (src/service/pid-file.ts). It returns once the signal is sent; the
// journal says what the resync did.
import { loadConfig } from '../config.ts';
import { describeError, SupervisorError } from '../errors.ts';
import { findServicePid } from '../service/pid-file.ts';
import { parseCommand, usageError } from './args.ts';
import { COMMAND_SPECS } from './commands.ts';

// Run the command; exit 0 once the signal is sent, 1 when no running service is found or it may
// not be signalled, 2 on bad usage.
export async function run(args: string[]): Promise<number> {
  const parsed = parseCommand('resync', COMMAND_SPECS.resync, args);
  if (!parsed.ok) return parsed.exitCode;
  const { values } = parsed;
  const fail = (message: string): number => {
    process.stderr.write(`dstack-supervisor resync: ${message}\n`);
    return 1;
  };
  let pid: number;
  if (values.pid !== undefined) {
    if (!/^[1-9]\d*$/.test(values.pid)) return usageError('resync', COMMAND_SPECS.resync, `--pid takes a process id, not '${values.pid}'`);
    pid = Number(values.pid);
  } else {
    try {
      const found = await findServicePid((await loadConfig(values.config)).state_dir);
      if ('none' in found) return fail(`no running dstack-supervisor found: ${found.none}`);
      pid = found.pid;
    } catch (err) {
      if (!(err instanceof SupervisorError)) throw err;
      return fail(describeError(err));
    }
  }
  try {
    process.kill(pid, 'SIGHUP');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EPERM') return fail(`not allowed to signal process ${pid}; run it as the service's user (sudo dstack-supervisor resync)`);
    if (code === 'ESRCH') return fail(`process ${pid} is gone`);
    throw err;
  }
  process.stdout.write(`asked dstack-supervisor (pid ${pid}) for a full resync; the journal says what it did (journalctl -u dstack-supervisor)\n`);
  return 0;
}
