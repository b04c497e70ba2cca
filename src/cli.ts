// One entry per sub-command; each module exports `run(args)` and a one-line summary.
type Command = { summary: string; load: () => Promise<{ run: (args: string[]) => Promise<number> }> };

const commands: Record<string, Command> = {
  run: { summary: 'watch apps.d and keep the host in step with it (the service entry point)', load: () => import('./cli/run.ts') },
  status: { summary: 'print every app: phase, app id, VM id, hash, URLs, last error [--json]', load: () => import('./cli/status.ts') },
  hash: { summary: 'print the app id, compose hash, ports and manifest of a compose file [--json]', load: () => import('./cli/hash.ts') },
  init: { summary: 'initialise the host: preflight, configs, units, KMS CVM (idempotent)', load: () => import('./cli/init.ts') },
  destroy: { summary: 'remove every app CVM and generated config; keeps KMS keys unless --purge', load: () => import('./cli/destroy.ts') },
};

// Usage text printed by --help and on an unknown command.
export function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return [
    'Usage: dstack-supervisor <command> [options]',
    '',
    'Commands:',
    ...lines,
    '',
    'Options:',
    '  --config FILE   supervisor.toml (default /etc/dstack/supervisor.toml, env DSTACK_SUPERVISOR_CONFIG)',
    '  -h, --help      show this help',
  ].join('\n');
}

// Dispatch argv to a sub-command and return the process exit code.
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`dstack-supervisor: unknown command "${name}"\n\n${usage()}\n`);
    return 2;
  }
  const mod = await command.load();
  return mod.run(rest);
}
