// One argument parser for every sub-command, so they all behave alike (issue 15): `-h`/`--help`
// prints the command's usage on stdout and exits 0; an unknown option, a missing value or a wrong
// number of operands prints one line naming the problem and the usage on stderr and exits 2 (the
// man page's EXIT STATUS), never a Node stack trace.
import { parseArgs } from 'node:util';
import { CONFIG_ENV, DEFAULT_CONFIG_PATH } from '../config.ts';
import { LOG_FORMAT_LIST } from '../log/format.ts';

// The exit status of bad usage.
export const EXIT_USAGE = 2;

// One option: its type, a one-letter alias, the placeholder of its value in the usage, one line of help.
export type OptionSpec = { type: 'boolean' | 'string'; short?: string; value?: string; help: string };

// What a command accepts; `operands` names the non-option arguments (none when absent).
export type CommandSpec = {
  summary: string;
  operands?: { synopsis: string; min: number; max: number };
  options: Readonly<Record<string, OptionSpec>>;
};

// `--config FILE`, which every command but `version` takes.
export const CONFIG_OPTION = {
  type: 'string',
  value: 'FILE',
  help: `supervisor.toml to read (default ${DEFAULT_CONFIG_PATH}, or env ${CONFIG_ENV})`,
} as const satisfies OptionSpec;

// `--log-format FORMAT`, which the commands that log (run, init, destroy) take.
export const LOG_FORMAT_OPTION = {
  type: 'string',
  value: 'FORMAT',
  help: `${LOG_FORMAT_LIST} (default journal when stdout is the journal, else text)`,
} as const satisfies OptionSpec;

const HELP_OPTION: OptionSpec = { type: 'boolean', short: 'h', help: 'show this help' };

// A boolean option is false when absent; a string option is undefined.
export type OptionValues<O extends Readonly<Record<string, OptionSpec>>> = {
  [K in keyof O]: O[K]['type'] extends 'boolean' ? boolean : string | undefined;
};

// A successful parse, or the exit status the caller returns at once (help was printed: 0; bad usage: 2).
export type Parsed<C extends CommandSpec> = { ok: true; values: OptionValues<C['options']>; operands: string[] } | { ok: false; exitCode: number };

// `Usage: dstack-supervisor hash FILE [--json] [--config FILE]`: what a usage error prints.
export function commandSynopsis(name: string, spec: CommandSpec): string {
  const options = Object.entries(spec.options).map(([key, o]) => `[--${key}${o.value ? ` ${o.value}` : ''}]`);
  return ['Usage: dstack-supervisor', name, spec.operands?.synopsis, ...options].filter((w) => w !== undefined).join(' ');
}

// The synopsis, the summary and the option list: what `dstack-supervisor <name> --help` prints.
export function commandUsage(name: string, spec: CommandSpec): string {
  const options = Object.entries({ ...spec.options, help: HELP_OPTION });
  const labels = options.map(([key, o]) => `${o.short ? `-${o.short}, ` : ''}--${key}${o.value ? ` ${o.value}` : ''}`);
  const width = Math.max(...labels.map((l) => l.length));
  return [
    commandSynopsis(name, spec),
    '',
    `${spec.summary[0]!.toUpperCase()}${spec.summary.slice(1)}.`,
    '',
    'Options:',
    ...options.map(([, o], i) => `  ${labels[i]!.padEnd(width)}  ${o.help}`),
  ].join('\n');
}

// Print a usage error of command `name` (the problem in one line, then the synopsis) and return
// its exit status; for checks of a value that only the command can make.
export function usageError(name: string, spec: CommandSpec, problem: string): number {
  process.stderr.write(`dstack-supervisor ${name}: ${problem}\n${commandSynopsis(name, spec)}\n`);
  return EXIT_USAGE;
}

// Parse `args` for command `name`; prints help or the usage error itself (see the top of the file).
export function parseCommand<C extends CommandSpec>(name: string, spec: C, args: string[]): Parsed<C> {
  const fail = (problem: string): Parsed<C> => ({ ok: false, exitCode: usageError(name, spec, problem) });
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, strict: true, options: { ...spec.options, help: HELP_OPTION } });
  } catch (err) {
    // Node's own words, first sentence only ("Unknown option '--jsn'"); its code says it is usage.
    if (!(err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS_'))) throw err;
    const first = err.message.split('. ')[0]!;
    return fail(`${first[0]!.toLowerCase()}${first.slice(1)}`);
  }
  if (parsed.values.help === true) {
    process.stdout.write(`${commandUsage(name, spec)}\n`);
    return { ok: false, exitCode: 0 };
  }
  const operands = parsed.positionals;
  const { min, max } = spec.operands ?? { min: 0, max: 0 };
  if (operands.length > max) return fail(`unexpected argument '${operands[max]}'`);
  if (operands.length < min) return fail(`missing ${spec.operands?.synopsis ?? 'argument'}`);
  const given: Record<string, boolean | string | undefined> = parsed.values;
  const values: Record<string, boolean | string | undefined> = {};
  for (const [key, option] of Object.entries(spec.options)) {
    const value = given[key];
    values[key] = option.type === 'boolean' ? value === true : typeof value === 'string' ? value : undefined;
  }
  return { ok: true, values: values as OptionValues<C['options']>, operands };
}
