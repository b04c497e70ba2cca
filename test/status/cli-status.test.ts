// `dstack-supervisor status` run as a real process, the way an operator or a config tool runs it.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { writeAppStatus, writeSupervisorStatus } from '../../src/status/store.ts';
import { countPhases } from '../../src/status/summary.ts';
import { sampleStatus } from './sample.ts';
import { defer } from '../helpers/cleanup.ts';

const BIN = fileURLToPath(new URL('../../bin/dstack-supervisor.mjs', import.meta.url));

// A temp dir with a supervisor.toml whose state_dir is inside it.
async function setup(t: TestContext): Promise<{ config: string; state: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'status-cli-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  const state = join(dir, 'state');
  const config = join(dir, 'supervisor.toml');
  await writeFile(config, `state_dir = ${JSON.stringify(state)}\n`);
  return { config, state };
}

function status(args: string[]) {
  return execa(process.execPath, [BIN, 'status', ...args], { reject: false, env: { DSTACK_SUPERVISOR_CONFIG: '' } });
}

test('rule 21: status --json prints every app status as a JSON array', async (t) => {
  const { config, state } = await setup(t);
  const shop = sampleStatus();
  const blog = sampleStatus({ app: 'blog', file: 'blog.yml', phase: 'invalid', last_error: 'blog.yml:3:1: bad indent' });
  await writeAppStatus(state, shop);
  await writeAppStatus(state, blog);
  const result = await status(['--json', '--config', config]);
  assert.equal(result.exitCode, 0, result.stderr);
  assert.deepEqual(JSON.parse(result.stdout), [blog, shop]);
});

test('rule 21: status prints the service line and a table of apps', async (t) => {
  const { config, state } = await setup(t);
  const apps = [sampleStatus(), sampleStatus({ app: 'blog', file: 'blog.yml', phase: 'pending', vm_id: null })];
  for (const app of apps) await writeAppStatus(state, app);
  await writeSupervisorStatus(state, { phase: 'ready', watcher: 'ok', counts: countPhases(apps), updated_at: '2026-01-01T00:00:00.000Z' });
  const result = await status(['--config', config]);
  assert.equal(result.exitCode, 0, result.stderr);
  const lines = result.stdout.split('\n');
  assert.equal(lines[0], 'supervisor: ready (updated 2026-01-01T00:00:00.000Z): running 1, pending 1, invalid 0, failed 0');
  assert.match(lines[2]!, /^APP +FILE +PHASE/);
  assert.match(lines[3]!, /^blog +blog\.yml +pending +0123456789ab +- +fedcba987654 /);
  assert.match(lines[4]!, /^shop +\S+shop\.yaml +running +0123456789ab +6f1c2d3e-/);
});

test('before the supervisor ever ran, status says where it looked and exits 0', async (t) => {
  const { config, state } = await setup(t);
  const text = await status(['--config', config]);
  assert.equal(text.exitCode, 0, text.stderr);
  assert.equal(text.stdout, `supervisor: no status in ${join(state, 'status')} yet (has dstack-supervisor run started?)`);
  const json = await status(['--json', '--config', config]);
  assert.equal(json.exitCode, 0);
  assert.deepEqual(JSON.parse(json.stdout), []);
});

test('a broken status file is reported on stderr and the others are still shown', async (t) => {
  const { config, state } = await setup(t);
  await writeAppStatus(state, sampleStatus());
  await writeFile(join(state, 'status', 'blog.json'), '{"app":');
  const result = await status(['--json', '--config', config]);
  assert.equal(result.exitCode, 0);
  assert.equal(JSON.parse(result.stdout).length, 1);
  assert.match(result.stderr, /skipping .*blog\.json/);
});

test('bad usage exits 2 and a missing config file exits 1, both naming the problem', async (t) => {
  const { config } = await setup(t);
  const usage = await status(['--jsn']);
  assert.equal(usage.exitCode, 2);
  assert.match(usage.stderr, /Usage: dstack-supervisor status/);
  const missing = await status(['--config', `${config}.missing`]);
  assert.equal(missing.exitCode, 1);
  assert.match(missing.stderr, /supervisor\.toml\.missing: no such file/);
});
