// `dstack-supervisor status` run as a real process, the way an operator or a config tool runs it.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { writeAppStatus, writeGatewayStatus, writeSupervisorStatus } from '../../src/status/store.ts';
import { countPhases } from '../../src/status/summary.ts';
import { DEFAULT_CONFIG_PATH } from '../../src/config.ts';
import { sampleStatus } from './sample.ts';
import { defer } from '../helpers/cleanup.ts';

const BIN = fileURLToPath(new URL('../../bin/dstack-supervisor.mjs', import.meta.url));
const MAN_PAGE = fileURLToPath(new URL('../../packaging/files/dstack-supervisor.8', import.meta.url));

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

test('rule 21, issue 15: status --json prints one object: config, supervisor and every app with its code', async (t) => {
  const { config, state } = await setup(t);
  const shop = sampleStatus({ code: null });
  const blog = sampleStatus({ app: 'blog', file: 'blog.yml', phase: 'invalid', last_error: 'blog.yml:3:1: bad indent', code: 'APP_YAML' });
  // Written before issue 15: no `code` nor `delete_at`; the report says null.
  const { code: _none, ...old } = sampleStatus({ app: 'old', file: 'old.yml' });
  for (const app of [shop, blog, old]) await writeAppStatus(state, app);
  const counts = countPhases([shop, blog, old]);
  await writeSupervisorStatus(state, { phase: 'ready', watcher: 'ok', counts, version: '9.8.7', updated_at: '2026-01-01T00:00:00.000Z' });
  const result = await status(['--json', '--config', config]);
  assert.equal(result.exitCode, 0, result.stderr);
  assert.deepEqual(JSON.parse(result.stdout), {
    config: { path: config, found: true },
    supervisor: { phase: 'ready', ready: true, watcher: 'ok', counts, version: '9.8.7', updated_at: '2026-01-01T00:00:00.000Z', pid: null },
    gateway: null,
    apps: [blog, { ...old, code: null }, shop].map((app) => ({ ...app, delete_at: app.delete_at ?? null, gpus: app.gpus ?? [], env_digest: app.env_digest ?? null })),
  });
});

test('issue 15: every key of status --json is documented in the man page', async (t) => {
  const { config, state } = await setup(t);
  await writeAppStatus(state, sampleStatus({ code: null }));
  await writeSupervisorStatus(state, { phase: 'ready', watcher: 'ok', counts: countPhases([]), version: '0.1.0', updated_at: '2026-01-01T00:00:00.000Z' });
  await writeGatewayStatus(state, { phase: 'serving', serving: true, reason: 'serving', vm_id: 'vm-1', domain: 'apps.example.com', switching: null, updated_at: '2026-01-01T00:00:00.000Z' });
  const report = JSON.parse((await status(['--json', '--config', config])).stdout) as Record<string, Record<string, unknown>>;
  const man = await readFile(MAN_PAGE, 'utf8');
  const section = man.slice(man.indexOf('.SH STATUS JSON'), man.indexOf('.SH FILES'));
  const documented = new Set([...section.matchAll(/^\.BR? (\S+)/gm)].map((m) => m[1]!.replace(/\\/g, '')));
  const paths = Object.entries(report).flatMap(([key, value]) => (Array.isArray(value) ? [key] : Object.keys(value).map((k) => `${key}.${k}`)));
  assert.deepEqual(paths.filter((p) => !documented.has(p)), [], 'keys of the object missing from the man page');
  const appKeys = Object.keys((report['apps'] as unknown as Array<Record<string, unknown>>)[0]!);
  assert.deepEqual(appKeys.filter((k) => !new RegExp(`^\\.BR? .*\\b${k}\\b`, 'm').test(section)), [], 'app keys missing from the man page');
});

test('rule 21: status prints the config it read, the service line and a table of apps', async (t) => {
  const { config, state } = await setup(t);
  const apps = [sampleStatus(), sampleStatus({ app: 'blog', file: 'blog.yml', phase: 'pending', vm_id: null })];
  for (const app of apps) await writeAppStatus(state, app);
  await writeSupervisorStatus(state, { phase: 'ready', watcher: 'ok', counts: countPhases(apps), version: '0.1.0', updated_at: '2026-01-01T00:00:00.000Z' });
  const result = await status(['--config', config]);
  assert.equal(result.exitCode, 0, result.stderr);
  const lines = result.stdout.split('\n');
  assert.equal(lines[0], `config: ${config}`);
  assert.equal(lines[1], 'supervisor: ready (version 0.1.0, updated 2026-01-01T00:00:00.000Z, not running): running 1, pending 1, invalid 0, failed 0');
  assert.match(lines[3]!, /^APP +FILE +PHASE/);
  assert.match(lines[4]!, /^blog +blog\.yml +pending +0123456789ab +- +fedcba987654 /);
  assert.match(lines[5]!, /^shop +\S+shop\.yaml +running +0123456789ab +6f1c2d3e-/);
});

test('before the supervisor ever ran, status says where it looked and exits 0', async (t) => {
  const { config, state } = await setup(t);
  const text = await status(['--config', config]);
  assert.equal(text.exitCode, 0, text.stderr);
  assert.equal(text.stdout, `config: ${config}\nsupervisor: no status in ${join(state, 'status')} yet (has dstack-supervisor run started?)`);
  const json = await status(['--json', '--config', config]);
  assert.equal(json.exitCode, 0);
  assert.deepEqual(JSON.parse(json.stdout), {
    config: { path: config, found: true },
    supervisor: { phase: null, ready: false, watcher: null, counts: null, version: null, updated_at: null, pid: null },
    gateway: null,
    apps: [],
  });
});

test('issue 15: with neither --config nor the default supervisor.toml, status says it uses the defaults', async (t) => {
  if (existsSync(DEFAULT_CONFIG_PATH) || existsSync('/var/lib/dstack')) {
    t.skip(`this machine has ${DEFAULT_CONFIG_PATH} or /var/lib/dstack`);
    return;
  }
  const text = await status([]);
  assert.equal(text.exitCode, 0, text.stderr);
  assert.equal(text.stdout.split('\n')[0], `config: ${DEFAULT_CONFIG_PATH} does not exist; using the defaults`);
  const json = await status(['--json']);
  assert.equal(json.exitCode, 0, json.stderr);
  assert.deepEqual(JSON.parse(json.stdout).config, { path: DEFAULT_CONFIG_PATH, found: false });
});

test('a broken status file is reported on stderr and the others are still shown', async (t) => {
  const { config, state } = await setup(t);
  await writeAppStatus(state, sampleStatus());
  await writeFile(join(state, 'status', 'blog.json'), '{"app":');
  await writeFile(join(state, 'status', '_supervisor.json'), '{"phase":');
  const result = await status(['--json', '--config', config]);
  assert.equal(result.exitCode, 0);
  const report = JSON.parse(result.stdout);
  assert.equal(report.apps.length, 1);
  assert.equal(report.supervisor.ready, false);
  assert.match(result.stderr, /skipping .*blog\.json/);
  assert.match(result.stderr, /skipping .*_supervisor\.json: not a valid supervisor status/);
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

test('issue 14: the gateway part shows a failed CVM\'s boot error and log tail and where *.<domain> points; --json gives an older file\'s missing keys as null', async (t) => {
  const { config, state } = await setup(t);
  const base = { serving: false, vm_id: 'vm-1', domain: 'apps.example.com', switching: null, updated_at: '2026-01-01T00:00:00.000Z' };
  const dns = { record: '*.apps.example.com', expected: ['203.0.113.7'], resolved: [], servers: [], problem: '*.apps.example.com does not resolve (…); add the DNS record "*.apps.example.com A 203.0.113.7"' };
  await writeGatewayStatus(state, { ...base, phase: 'failed', reason: 'the gateway CVM vm-1 failed to boot (Boot denied); started it again', boot_error: 'Boot denied', log_tail: ['line one', 'line two'], dns });
  const text = await status(['--config', config]);
  assert.equal(text.exitCode, 0, text.stderr);
  assert.deepEqual(text.stdout.split('\n').slice(2), [
    'gateway: failed (*.apps.example.com): the gateway CVM vm-1 failed to boot (Boot denied); started it again',
    '  boot error: Boot denied',
    '  last lines of its log (GET /logs?id=vm-1 on dstack-vmm):',
    '    line one',
    '    line two',
    `  dns: ${dns.problem}`,
  ]);
  // A file written before these keys existed.
  await writeGatewayStatus(state, { ...base, phase: 'booting', reason: 'booting' });
  const json = JSON.parse((await status(['--json', '--config', config])).stdout);
  assert.deepEqual(json.gateway, { ...base, phase: 'booting', reason: 'booting', boot_error: null, log_tail: [], dns: null });
});
