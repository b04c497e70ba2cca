// Issue 15: what `run` logs, as a real process: readable lines on a terminal or pipe, pino's JSON
// with --log-format json, native journal entries when stdout is systemd's journal stream. A
// supervisor.toml that does not exist makes `run` log exactly one error and exit 1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { JOURNAL_SOCKET } from '../../src/log/journal-socket.ts';
import { defer } from '../helpers/cleanup.ts';

const BIN = join(import.meta.dirname, '../../bin/dstack-supervisor.mjs');
const MISSING = '/nonexistent/supervisor.toml';
const PROBLEM = `${MISSING}: no such file; create it or point --config at the right file`;

function run(args: string[]) {
  return execa(process.execPath, [BIN, 'run', '--config', MISSING, ...args], { reject: false });
}

test('issue 15: on a pipe `run` logs readable lines: time, level, sentence', async () => {
  const result = await run([]);
  assert.equal(result.exitCode, 78, "supervisor.toml cannot be used: exit 78, which the unit does not restart");
  assert.match(result.stdout, new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ error ${PROBLEM}$`));
});

test('issue 15: --log-format json keeps pino\'s JSON lines with their journald priority prefix', async () => {
  const result = await run(['--log-format', 'json']);
  assert.equal(result.exitCode, 78);
  const match = /^<3>(\{.*\})$/.exec(result.stdout);
  assert.ok(match, result.stdout);
  assert.deepEqual(JSON.parse(match[1]!), { level: 'error', time: (JSON.parse(match[1]!) as { time: string }).time, msg: PROBLEM });
});

test('issue 15: with stdout on systemd\'s journal stream `run` sends native entries (here, with no journald, the <N> fallback lines)', { skip: existsSync(JOURNAL_SOCKET) && `a journald listens at ${JOURNAL_SOCKET}` }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dstack-journal-stream-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  const out = join(dir, 'stdout');
  await writeFile(out, '');
  const journalStream = (await execa('stat', ['-c', '%d:%i', out])).stdout.trim();
  // The file itself as fd 1, as systemd hands over its stream (execa would pipe through this process).
  const fd = openSync(out, 'a');
  defer(t, () => closeSync(fd));
  const child = spawn(process.execPath, [BIN, 'run', '--config', MISSING], { stdio: ['ignore', fd, 'inherit'], env: { ...process.env, JOURNAL_STREAM: journalStream } });
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 78);
  assert.equal(await readFile(out, 'utf8'), `<3>${PROBLEM}\n`);
});
