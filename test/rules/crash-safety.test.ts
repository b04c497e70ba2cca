// docs/apps-dir.md rule 18 under fire: the supervisor runs as a real child process and is killed with
// SIGKILL at 50 random instants while it deploys, upgrades and tears down (the simulated VMM adds
// latency to every call, so the kills land inside operations). After each round the directory
// changes; at the end one clean run must converge to: exactly one VM per file, running that
// file's content (in its manifest and in what its guest booted), no VM without a file, and an
// allowlist equal to the hashes of what runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { rm, writeFile, readFile, readdir, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { buildAppSpec } from '../../src/app/spec.ts';
import { composeText, freePorts, waitUntil } from '../helpers/harness.ts';
import { prng } from '../soak/ops.ts';
import { defer } from '../helpers/cleanup.ts';
import { childConfigToml, startSimDir } from '../helpers/child-stage.ts';

const BIN = join(import.meta.dirname, '../../bin/dstack-supervisor.mjs');

function startChild(config: string): { child: ChildProcess; exited: Promise<number | null>; operating: Promise<void> } {
  const child = spawn(process.execPath, [BIN, 'run', '--config', config, '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // Resolves at the first journal line that starts an operation (or when the child exits).
  const operating = new Promise<void>((resolve) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      if (/"ACTION":"(deploy|upgrade|teardown)"/.test(chunk.toString())) resolve();
    });
    void exited.then(() => resolve());
  });
  return { child, exited, operating };
}

test('rule 18: SIGKILL at 50 random instants leaves one VM per file, no orphans, allowlist == running hashes', async (t) => {
  const seed = Number(process.env.CRASH_SEED ?? 18);
  const random = prng(seed);
  const stage = await startSimDir(t, 'dstack-crash-', { bootDelayMs: 40, removeDelayMs: 40, shutdownDelayMs: 20 });
  const { dir, appsDir, authPath, sim } = stage;
  sim.faults.setLatency(15);
  const configPath = join(dir, 'supervisor.toml');
  await writeFile(configPath, childConfigToml(stage, ['settle_ms = 50', 'resync_s = 1', 'delete_confirm_s = 0.2', 'backoff_initial_s = 1', 'backoff_max_s = 1']));

  const names = ['alpha', 'bravo', 'charlie', 'delta'];
  const ports = await freePorts(names.length);
  let version = 0;
  // Change the directory a little: a new app, a new version, or a delete (never all at once).
  async function mutate(): Promise<void> {
    const name = names[Math.floor(random() * names.length)]!;
    const present = (await readdir(appsDir)).map((f) => f.replace(/\.yaml$/, ''));
    const roll = random();
    if (present.includes(name) && roll < 0.3 && present.length > 1) {
      await rm(join(appsDir, `${name}.yaml`));
    } else {
      version++;
      const path = join(appsDir, `${name}.yaml`);
      await writeFile(path, composeText(ports[names.indexOf(name)]!, `v${version}`));
      await chmod(path, 0o644);
    }
  }

  // A kill counts as landing inside an operation when it leaves an intent record behind.
  const interruptedOps = async () => {
    const recordsDir = join(dir, 'state', 'apps');
    const files = await readdir(recordsDir).catch(() => [] as string[]);
    const records = await Promise.all(files.filter((f) => f.endsWith('.json')).map((f) => readFile(join(recordsDir, f), 'utf8')));
    return records.map((r) => JSON.parse(r) as { intent?: unknown }).filter((r) => r.intent).length;
  };
  let interrupted = 0;
  for (let round = 0; round < 50; round++) {
    await mutate();
    const { child, exited, operating } = startChild(configPath);
    // A round that times out must not leave its child running: it kept the test process alive.
    defer(t, () => child.kill('SIGKILL'));
    // Every change starts an operation (new content or a delete); kill at a random instant in it.
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`round ${round}: no operation started within 15 s (seed ${seed})`)), 15_000);
    });
    await Promise.race([operating, timeout]).finally(() => clearTimeout(timer));
    // The random delay is the point of the test: it picks the instant the kill lands.
    await new Promise((r) => setTimeout(r, Math.floor(random() * 200)));
    child.kill('SIGKILL');
    await exited;
    if ((await interruptedOps()) > 0) interrupted++;
  }
  assert.ok(interrupted >= 10, `only ${interrupted} of 50 kills landed inside an operation`);

  const { child, exited } = startChild(configPath);
  let lastOutput = '';
  child.stdout?.on('data', (c: Buffer) => (lastOutput = (lastOutput + c.toString()).slice(-6000)));
  defer(t, () => {
    child.kill('SIGKILL');
    return exited;
  });
  const expected = async () => {
    const files = (await readdir(appsDir)).filter((f) => f.endsWith('.yaml'));
    const want = new Map<string, string>();
    for (const f of files) {
      const name = f.replace(/\.yaml$/, '');
      const text = await readFile(join(appsDir, f), 'utf8');
      const spec = buildAppSpec({ name, file: join(appsDir, f), text, defaults: { image: 'x', vcpu: 2, memory: 2048, disk: 20, portAddress: '127.0.0.1' } });
      want.set(name, spec.composeHash);
    }
    return want;
  };
  const want = await expected();
  const sha = async (s: string) => (await import('node:crypto')).createHash('sha256').update(s).digest('hex');
  const diagnose = async () =>
    JSON.stringify(
      {
        vms: sim.state.list().map((v) => ({ id: v.id, name: v.name, status: v.status, boot: v.boot_progress, err: v.boot_error, events: v.events.slice(-4) })),
        allowlist: JSON.parse(await readFile(authPath, 'utf8')).apps,
        records: await Promise.all((await readdir(join(dir, 'state', 'apps'))).map((f) => readFile(join(dir, 'state', 'apps', f), 'utf8'))),
      },
      null,
      1,
    ) + lastOutput;
  await waitUntil(
    async () => {
      const vms = sim.state.list();
      if (vms.length !== want.size) return false;
      for (const vm of vms) {
        if (vm.status !== 'running' || vm.boot_progress !== 'done') return false;
        if (want.get(vm.name) !== (await sha(vm.configuration!.compose_file))) return false;
        // What the guest booted, not only the manifest: a kill between UpdateVm and StartVm.
        if (want.get(vm.name) !== (await sha(sim.state.launchedCompose(vm.id)))) return false;
      }
      const apps = JSON.parse(await readFile(authPath, 'utf8')).apps as Record<string, { composeHashes: string[] }>;
      const fromAllowlist = Object.values(apps).flatMap((a) => a.composeHashes).sort();
      return JSON.stringify(fromAllowlist) === JSON.stringify([...want.values()].sort());
    },
    `convergence to ${[...want.keys()].join(', ')} (seed ${seed})`,
    30_000,
  ).catch(async (err: Error) => {
    throw new Error(`${err.message}\n${await diagnose()}`);
  });
  const vms = sim.state.list();
  assert.equal(new Set(vms.map((v) => v.name)).size, vms.length, 'no duplicate VM for an app');
  const apps = JSON.parse(await readFile(authPath, 'utf8')).apps as Record<string, { composeHashes: string[] }>;
  for (const vm of vms) assert.deepEqual(apps[vm.app_id]?.composeHashes, [want.get(vm.name)], `allowlist of ${vm.name}`);
  assert.equal(Object.keys(apps).length, vms.length, 'no allowlist entry without a VM');
});
