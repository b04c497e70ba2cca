// Issue 15: `systemctl reload` (SIGHUP) and `dstack-supervisor resync` ask the running service for
// a full resync now. The service runs as a real child process against a simulated VMM served by
// this test, with `[apps] resync_s` and the retry backoff an hour: a crashed VM that comes back
// came back because of the signal.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { access, chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { SimHost } from '../../src/sim/host.ts';
import { composeText, freePorts, waitUntil } from '../helpers/harness.ts';
import { defer } from '../helpers/cleanup.ts';
import { childConfigToml, startSimDir } from '../helpers/child-stage.ts';

const BIN = join(import.meta.dirname, '../../bin/dstack-supervisor.mjs');

type Stage = {
  dir: string;
  config: string;
  sim: SimHost;
  child: ChildProcess;
  exited: Promise<number | null>;
  // The journal lines the child wrote so far (their `msg`).
  messages(): string[];
  writeConfig(extra?: string[]): Promise<void>;
};

// A simulated host, a supervisor.toml and `dstack-supervisor run` as a child process.
async function startStage(t: TestContext, options: { apps?: string[] } = {}): Promise<Stage> {
  const stage = await startSimDir(t, 'resync-cli-', { bootDelayMs: 20, removeDelayMs: 20, shutdownDelayMs: 10 });
  const { dir, appsDir, sim } = stage;
  const ports = await freePorts(options.apps?.length ?? 0);
  for (const [i, name] of (options.apps ?? []).entries()) {
    await writeFile(join(appsDir, `${name}.yaml`), composeText(ports[i]!, name));
    await chmod(join(appsDir, `${name}.yaml`), 0o644);
  }
  const config = join(dir, 'supervisor.toml');
  // An hour of resync and of retry backoff: only the signal can start a crashed VM again.
  const apps = ['settle_ms = 50', 'poll_s = 0.05', 'resync_s = 3600', 'backoff_initial_s = 3600', 'backoff_max_s = 3600', 'boot_timeout_s = 10'];
  const writeConfig = (extra: string[] = []) => writeFile(config, childConfigToml(stage, [...apps, ...extra]));
  await writeConfig();
  const env = { ...process.env };
  delete env['DSTACK_SUPERVISOR_CONFIG'];
  delete env['NOTIFY_SOCKET'];
  const child = spawn(process.execPath, [BIN, 'run', '--config', config, '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'], env });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  defer(t, () => {
    child.kill('SIGKILL');
    return exited;
  });
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const messages = () =>
    out.split('\n').flatMap((line) => {
      const json = /^<\d>(\{.*\})$/.exec(line)?.[1];
      return json === undefined ? [] : [String((JSON.parse(json) as { msg?: unknown }).msg)];
    });
  return { dir, config, sim, child, exited, messages, writeConfig };
}

const running = (sim: SimHost, name: string) => sim.state.list().find((v) => v.name === name && v.status === 'running' && v.boot_progress === 'done');

// Once the service has deployed `name` (its status says running: the deploy is over), crash its
// VM; resolves when the simulated VMM shows it down. Only a full pass starts it again.
async function crash(stage: Stage, name: string): Promise<void> {
  const status = join(stage.dir, 'state', 'status', `${name}.json`);
  await waitUntil(() => readFile(status, 'utf8').then((text) => (JSON.parse(text) as { phase: string }).phase === 'running', () => false), `${name} status running`);
  const vm = running(stage.sim, name);
  assert.ok(vm, `${name} runs`);
  stage.sim.faults.crashVm(vm.id);
  await waitUntil(() => !running(stage.sim, name), `${name} crashed`);
}

test('issue 15: `dstack-supervisor resync` finds the service by its pid file; the resync starts a crashed VM', async (t) => {
  const stage = await startStage(t, { apps: ['web'] });
  await crash(stage, 'web');
  const result = await execa(process.execPath, [BIN, 'resync', '--config', stage.config], { reject: false });
  assert.equal(result.exitCode, 0, result.stderr);
  assert.equal(result.stdout, `asked dstack-supervisor (pid ${stage.child.pid}) for a full resync; the journal says what it did (journalctl -u dstack-supervisor)`);
  await waitUntil(() => running(stage.sim, 'web'), 'web started again by the resync', 15_000);
  assert.ok(stage.messages().includes('SIGHUP: resyncing every app and VM now'));
  assert.equal(stage.child.exitCode, null, 'the service still runs');
  // status finds the service the same way.
  const status = await execa(process.execPath, [BIN, 'status', '--json', '--config', stage.config], { reject: false });
  assert.equal(JSON.parse(status.stdout).supervisor.pid, stage.child.pid);
});

test('issue 15: SIGHUP (systemctl reload) resyncs and says which changed supervisor.toml keys wait for a restart', async (t) => {
  const stage = await startStage(t, { apps: ['web'] });
  await crash(stage, 'web');
  await stage.writeConfig(['concurrency = 2']);
  // What the unit's ExecReload= runs.
  const reload = await execa(process.execPath, [BIN, 'resync', '--pid', String(stage.child.pid)], { reject: false, env: { DSTACK_SUPERVISOR_CONFIG: '/nonexistent' } });
  assert.equal(reload.exitCode, 0, reload.stderr);
  await waitUntil(() => running(stage.sim, 'web'), 'web started again by the resync', 15_000);
  const changed = await waitUntil(() => stage.messages().find((m) => m.includes('changed')), 'the reload line about supervisor.toml');
  assert.equal(changed, `SIGHUP: ${stage.config} changed [apps] concurrency; not applied: restart the service to apply (systemctl restart dstack-supervisor; running apps keep running)`);

  await stage.writeConfig(['concurrency = 0']);
  stage.child.kill('SIGHUP');
  const broken = await waitUntil(() => stage.messages().find((m) => m.includes('keeps the configuration')), 'the reload line about a broken supervisor.toml');
  assert.match(broken, /^SIGHUP: .*supervisor\.toml: \[apps\] concurrency: .*; the service keeps the configuration it started with/);
  await stage.writeConfig();
  stage.child.kill('SIGHUP');
  await waitUntil(() => stage.messages().includes(`SIGHUP: ${stage.config} unchanged`), 'the reload line of an unchanged file');
  assert.equal(stage.child.exitCode, null, 'the service still runs');
});

test('issue 15: a SIGHUP while the service is still starting is logged, not fatal', async (t) => {
  // Every VMM call hangs for a minute: the service is recorded in pid.json but cannot finish starting.
  const stage = await startStage(t);
  stage.sim.faults.setLatency(60_000);
  await waitUntil(() => access(join(stage.dir, 'state', 'pid.json')).then(() => true, () => false), 'pid.json');
  stage.child.kill('SIGHUP');
  await waitUntil(() => stage.messages().includes('SIGHUP: still starting; the first pass after start looks at every app anyway'), 'the starting line');
  assert.equal(stage.child.exitCode, null, 'the service still runs');
  stage.sim.faults.reset();
});

test('issue 15: resync without a running service exits 1 saying why; a bad --pid is bad usage', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'resync-none-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  const config = join(dir, 'supervisor.toml');
  await writeFile(config, `state_dir = "${join(dir, 'state')}"\n`);
  const none = await execa(process.execPath, [BIN, 'resync', '--config', config], { reject: false });
  assert.equal(none.exitCode, 1);
  assert.equal(none.stderr, `dstack-supervisor resync: no running dstack-supervisor found: ${join(dir, 'state', 'pid.json')} does not exist (dstack-supervisor run has not started with this state_dir)`);
  const bad = await execa(process.execPath, [BIN, 'resync', '--pid', '12x'], { reject: false });
  assert.equal(bad.exitCode, 2);
  assert.equal(bad.stderr.split('\n')[0], "dstack-supervisor resync: --pid takes a process id, not '12x'");
});
