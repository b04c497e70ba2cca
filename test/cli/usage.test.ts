// Issue 15: every sub-command answers --help and bad usage the same way, as a real process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';

const BIN = join(import.meta.dirname, '../../bin/dstack-supervisor.mjs');
const COMMANDS = ['run', 'status', 'hash', 'resync', 'init', 'destroy', 'kms', 'version'];

function cli(args: string[]) {
  return execa(process.execPath, [BIN, ...args], { reject: false, env: { DSTACK_SUPERVISOR_CONFIG: '' } });
}

// A Node stack frame ("    at parseArgs (node:internal/...)") or an error class name leaking out.
const STACK = /^\s+at |ERR_PARSE_ARGS|TypeError/m;

test('issue 15: every sub-command answers --help and -h with its own usage on stdout and exit 0', async () => {
  await Promise.all(COMMANDS.flatMap((command) => ['--help', '-h'].map(async (flag) => {
    const result = await cli([command, flag]);
    assert.equal(result.exitCode, 0, `${command} ${flag}: ${result.stderr}`);
    assert.match(result.stdout, new RegExp(`^Usage: dstack-supervisor ${command}\\b`), `${command} ${flag}`);
    assert.match(result.stdout, /^ {2}-h, --help +show this help$/m, `${command} ${flag}`);
    assert.equal(result.stderr, '', `${command} ${flag}`);
  })));
});

test('issue 15: an unknown option exits 2 with one line naming it and the usage on stderr, never a stack trace', async () => {
  await Promise.all(COMMANDS.map(async (command) => {
    const result = await cli([command, '--bogus']);
    assert.equal(result.exitCode, 2, `${command}: ${result.stderr}`);
    assert.equal(result.stdout, '', command);
    const lines = result.stderr.split('\n');
    assert.equal(lines[0], `dstack-supervisor ${command}: unknown option '--bogus'`);
    assert.match(lines[1]!, new RegExp(`^Usage: dstack-supervisor ${command}\\b`));
    assert.doesNotMatch(result.stderr, STACK, command);
  }));
});

test('issue 15: missing values, stray and missing operands are bad usage (exit 2), not failures', async () => {
  const cases: Array<[string[], string]> = [
    [['status', '--config'], "dstack-supervisor status: option '--config <value>' argument missing"],
    [['destroy', '--purge', 'now'], "dstack-supervisor destroy: unexpected argument 'now'"],
    [['init', 'extra'], "dstack-supervisor init: unexpected argument 'extra'"],
    [['hash'], 'dstack-supervisor hash: missing FILE'],
    [['hash', 'a.yaml', 'b.yaml'], "dstack-supervisor hash: unexpected argument 'b.yaml'"],
    [['run', '--json'], "dstack-supervisor run: unknown option '--json'"],
    [['run', '--log-format', 'xml'], "dstack-supervisor run: --log-format must be journal, text or json, not 'xml'"],
    [['destroy', '--log-format'], "dstack-supervisor destroy: option '--log-format <value>' argument missing"],
    [['kms', 'allow'], 'dstack-supervisor kms: missing MR_AGGREGATED'],
    [['kms', 'measurement', 'extra'], "dstack-supervisor kms: unexpected argument 'extra'"],
    [['kms', 'forget', 'ab'], "dstack-supervisor kms: unknown action 'forget' (measurement or allow)"],
  ];
  await Promise.all(cases.map(async ([args, first]) => {
    const result = await cli(args);
    assert.equal(result.exitCode, 2, args.join(' '));
    assert.equal(result.stderr.split('\n')[0], first);
    assert.doesNotMatch(result.stderr, STACK, args.join(' '));
  }));
});

test('issue 15: --version and `version` print the package version; no command or an unknown one exits 2', async () => {
  const { version } = JSON.parse(await readFile(join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string };
  for (const args of [['--version'], ['version']]) {
    const result = await cli(args);
    assert.equal(result.exitCode, 0, result.stderr);
    assert.equal(result.stdout, `dstack-supervisor ${version}`);
  }
  const help = await cli(['--help']);
  assert.equal(help.exitCode, 0);
  for (const command of COMMANDS) assert.match(help.stdout, new RegExp(`^ {2}${command} +\\S`, 'm'));
  for (const [args, first] of [[[], 'dstack-supervisor: no command given'], [['deploy'], "dstack-supervisor: unknown command 'deploy'"], [['--bogus'], "dstack-supervisor: unknown option '--bogus'"]] as const) {
    const result = await cli([...args]);
    assert.equal(result.exitCode, 2, args.join(' '));
    assert.equal(result.stdout, '');
    assert.equal(result.stderr.split('\n')[0], first);
  }
});
