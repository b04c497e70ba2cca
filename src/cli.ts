// The command line: one entry per sub-command, loaded only when run (so `run` never loads what
// `init` or `hash` need). What each accepts is in ./cli/commands.ts, parsed by ./cli/args.ts.
import { COMMAND_SPECS, type CommandName } from './cli/commands.ts';
import { EXIT_USAGE } from './cli/args.ts';
import { onClosedStdout, type ClosedStdout } from './cli/stdout.ts';

type CommandModule = { run: (args: string[]) => Promise<number> };
// `stdout`: what happens when the reader of stdout goes away (./cli/stdout.ts); none for `run`.
type Command = { load: () => Promise<CommandModule>; stdout?: ClosedStdout };

const commands: Record<CommandName, Command> = {
  run: { load: () => import('./cli/run.ts') },
  status: { load: () => import('./cli/status.ts'), stdout: 'exit' },
  hash: { load: () => import('./cli/hash.ts'), stdout: 'exit' },
  resync: { load: () => import('./cli/resync.ts'), stdout: 'exit' },
  init: { load: () => import('./cli/init.ts'), stdout: 'finish' },
  destroy: { load: () => import('./cli/destroy.ts'), stdout: 'finish' },
  kms: { load: () => import('./cli/kms.ts'), stdout: 'exit' },
  version: { load: () => import('./cli/version.ts'), stdout: 'exit' },
};

// Usage text printed by --help and on an unknown command.
export function usage(): string {
  const width = Math.max(...Object.keys(COMMAND_SPECS).map((c) => c.length));
  const lines = Object.entries(COMMAND_SPECS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return [
    'Usage: dstack-supervisor <command> [options]',
    '',
    'Commands:',
    ...lines,
    '',
    'Options:',
    '  -h, --help      show this help (after a command: that command\'s options)',
    '  --version       print the version',
    '',
    'Every command but version takes --config FILE; `dstack-supervisor COMMAND --help` lists its',
    'options, and dstack-supervisor(8) says more.',
  ].join('\n');
}

function isCommand(name: string): name is CommandName {
  return Object.hasOwn(commands, name);
}

// Dispatch argv to a sub-command and return the process exit code.
export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  const name = first === '--version' ? 'version' : first;
  if (name === '--help' || name === '-h' || name === 'help') {
    onClosedStdout('exit');
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  if (name === undefined || !isCommand(name)) {
    const problem = name === undefined ? 'no command given' : name.startsWith('-') ? `unknown option '${name}'` : `unknown command '${name}'`;
    process.stderr.write(`dstack-supervisor: ${problem}\n${usage()}\n`);
    return EXIT_USAGE;
  }
  const command = commands[name];
  if (command.stdout) onClosedStdout(command.stdout);
  return (await command.load()).run(rest);
}
