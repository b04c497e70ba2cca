import { destroyFromConfig } from '../init/command.ts';
import { runHostCommand } from './init.ts';
import { parseCommand } from './args.ts';
import { COMMAND_SPECS } from './commands.ts';

// `dstack-supervisor destroy [--purge] [--config FILE] [--log-format FORMAT]`: remove every app CVM and what init
// rendered; the KMS CVM is stopped and kept (its keys) unless --purge.
export async function run(args: string[]): Promise<number> {
  const parsed = parseCommand('destroy', COMMAND_SPECS.destroy, args);
  if (!parsed.ok) return parsed.exitCode;
  const { values } = parsed;
  return runHostCommand('destroy', values, async (config, log) => {
    const result = await destroyFromConfig(config, log, { purge: values.purge });
    const kms = result.kms === undefined ? 'no KMS CVM found' : `KMS CVM ${result.kms.vmId} ${result.kms.action}`;
    const gateway = result.gateway === undefined ? '' : `, gateway CVM ${result.gateway.vmId} ${result.gateway.action}`;
    return `destroy complete: ${result.removedApps.length} app CVM(s) removed, ${kms}${gateway}, ${result.stoppedUnits.length} unit(s) stopped, ${result.removedFiles.length} file(s) removed`;
  });
}
