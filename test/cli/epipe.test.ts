// Issue 15: `dstack-supervisor status | head -1` died with `Error: write EPIPE` and a stack. A
// reader that goes away ends a reporting command quietly with status 0 (src/cli/stdout.ts).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { statusDir } from '../../src/status/store.ts';
import { sampleStatus } from '../status/sample.ts';
import { defer } from '../helpers/cleanup.ts';
import { withClosedStdout } from '../helpers/closed-stdout.ts';

// A config whose state_dir holds `count` app status files: far more output than a pipe buffers.
async function manyApps(t: TestContext, count: number): Promise<{ config: string; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'epipe-cli-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  const state = join(dir, 'state');
  await mkdir(statusDir(state), { recursive: true });
  for (let i = 0; i < count; i++) {
    const app = `app-${String(i).padStart(4, '0')}`;
    const status = sampleStatus({ app, file: `/etc/dstack/apps.d/${app}.yaml`, last_error: `apps.d/${app}.yaml: ${'a long error message '.repeat(5)}` });
    await writeFile(join(statusDir(state), `${app}.json`), JSON.stringify(status));
  }
  const config = join(dir, 'supervisor.toml');
  await writeFile(config, `state_dir = ${JSON.stringify(state)}\n`);
  return { config, dir };
}

test('issue 15: `status | head -1` exits 0 with nothing on stderr, as text and as --json', async (t) => {
  // 600 apps are ~250 KiB of table and ~400 KiB of JSON: the writer must block on the full pipe
  // and meet the closed end, whatever the pipe's buffer size.
  const { config } = await manyApps(t, 600);
  for (const args of [['status', '--config', config], ['status', '--json', '--config', config]]) {
    const result = await withClosedStdout(args, 1);
    assert.deepEqual({ code: result.code, signal: result.signal, stderr: result.stderr }, { code: 0, signal: null, stderr: '' }, args.join(' '));
    assert.ok(result.read > 0, 'the reader got the first line');
  }
});

test('issue 15: help, version and hash with their reader gone exit 0 with nothing on stderr', async (t) => {
  const { config, dir } = await manyApps(t, 0);
  const compose = join(dir, 'web.yaml');
  await writeFile(compose, 'services:\n  web:\n    image: nginx:1.27\n');
  for (const args of [['--help'], ['status', '--help'], ['--version'], ['hash', compose, '--config', config], ['status', '--config', config]]) {
    const result = await withClosedStdout(args, 0);
    assert.deepEqual({ code: result.code, signal: result.signal, stderr: result.stderr }, { code: 0, signal: null, stderr: '' }, args.join(' '));
  }
});
