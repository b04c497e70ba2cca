// `dstack-supervisor version` (also `--version`): print the package version.
import { parseCommand } from './args.ts';
import { COMMAND_SPECS } from './commands.ts';
import { VERSION } from '../version.ts';

// Run the command; exit 0, or 2 on bad usage.
export async function run(args: string[]): Promise<number> {
  const parsed = parseCommand('version', COMMAND_SPECS.version, args);
  if (!parsed.ok) return parsed.exitCode;
  process.stdout.write(`dstack-supervisor ${VERSION}\n`);
  return 0;
}
