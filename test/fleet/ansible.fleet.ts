// Issue 17 part 1: the Ansible collection (packaging/ansible) driven by the real ansible-playbook
// against three simulated hosts on this machine, each its own directory, supervisor.toml and
// running supervisor (with its own simulated dstack-vmm), reached with ansible_connection=local.
// Needs ansible-playbook (apt package ansible-core, which .ci/run installs); elsewhere the test
// says why it did not run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { createVmmClient } from '../../src/vmm/client.ts';
import { defer } from '../helpers/cleanup.ts';
import { freePorts } from '../helpers/harness.ts';
import { BIN, linkCollection, localHostVars, simHostPaths, whyNoAnsible } from './local-hosts.ts';

const HOSTS = ['h1', 'h2', 'h3'] as const;

const notRun = await whyNoAnsible();

type Host = { name: string; dir: string; appsDir: string; config: string; port: number };
type Recap = { ok: number; changed: number; failed: number };

// The inventory: per-host paths and command, supervisor.toml as host_config, and one app whose
// port, image and state extra vars can change (-e beats host vars, so `-e shop_port=80x` breaks
// every host's compose).
function inventoryOf(hosts: Host[], secret: string): string {
  const uid = process.getuid?.() ?? 0;
  const hostVars = Object.fromEntries(
    hosts.map((h) => [
      h.name,
      {
        ...localHostVars(h.config),
        dstack_apps_dir: h.appsDir,
        dstack_apps_owner: uid,
        shop_port: h.port,
        host_config: {
          ...simHostPaths(h.dir, h.appsDir, join(h.dir, 'auth-config.json')),
          init: { enabled: false },
          apps: { owner: uid, settle_ms: 200 },
          sim: { enabled: true, dir: join(h.dir, 'sim') },
        },
      },
    ]),
  );
  const compose = 'services:\n  web:\n    image: "{{ shop_image }}"\n    ports:\n      - "{{ shop_port }}:80"\n';
  return JSON.stringify({
    all: {
      children: {
        dstack: {
          hosts: hostVars,
          vars: {
            dstack_become: false,
            host_package_installed: true,
            host_manage_service: false,
            shop_image: 'nginx:1.27-alpine',
            shop_state: 'present',
            shop_secret: secret,
            dstack_apps: [{ name: 'shop', compose, env: { API_TOKEN: '{{ shop_secret }}' }, state: '{{ shop_state }}' }],
          },
        },
      },
    },
  });
}

function recapOf(out: string): Map<string, Recap> {
  const recap = new Map<string, Recap>();
  for (const m of out.matchAll(/^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)/gm)) {
    recap.set(m[1]!, { ok: Number(m[2]), changed: Number(m[3]), failed: Number(m[4]) });
  }
  return recap;
}

type AppStatus = { app: string; phase: string; compose_hash: string | null; code: string | null; env_digest: string | null; vm_id: string | null };

async function appsOf(host: Host): Promise<AppStatus[]> {
  const { stdout } = await execa(process.execPath, [BIN, 'status', '--json', '--config', host.config]);
  return (JSON.parse(stdout) as { apps: AppStatus[] }).apps;
}

// The apps of the last `status --json` the app role read on `host` (-v prints each task's result
// as one JSON line): what the role saw when it stopped waiting.
function lastStatusRead(out: string, host: string): AppStatus[] {
  const reads = out.split(/^TASK \[/m).filter((block) => block.startsWith('dstack.supervisor.app : Read the status until'));
  const results = reads.flatMap((block) => [...block.matchAll(/^ok: \[(\S+)\] => (\{.*\})$/gm)].filter((m) => m[1] === host).map((m) => m[2]!));
  const last = results.at(-1);
  assert.ok(last, `no status read of the app role on ${host}:\n${out}`);
  return (JSON.parse((JSON.parse(last) as { stdout: string }).stdout) as { apps: AppStatus[] }).apps;
}

// What `hash --json` says of the host's shop.yaml and shop.env now.
async function hashOf(host: Host): Promise<{ compose_hash: string; env_digest: string | null }> {
  const { stdout } = await execa(process.execPath, [BIN, 'hash', join(host.appsDir, 'shop.yaml'), '--json', '--config', host.config]);
  return JSON.parse(stdout) as { compose_hash: string; env_digest: string | null };
}

// The shop VM as the host's simulated dstack-vmm has it: the sealed env it boots with, and how far.
async function shopVmOf(host: Host): Promise<{ id: string; status: string; encryptedEnv: string }> {
  const vmm = createVmmClient({ url: `unix:${join(host.dir, 'sim', 'vmm.sock')}` });
  try {
    const vm = (await vmm.status()).vms.find((v) => v.name === 'shop');
    assert.ok(vm?.configuration, `${host.name}: no shop VM`);
    return { id: vm.id, status: `${vm.status}/${vm.boot_progress}`, encryptedEnv: vm.configuration.encrypted_env };
  } finally {
    await vmm.close();
  }
}

test('issue 17: the dstack.supervisor collection rolls an app over three simulated hosts', { skip: notRun, timeout: 600_000 }, async (t) => {
  const work = await mkdtemp(join(tmpdir(), 'dstack-fleet-'));
  defer(t, () => rm(work, { recursive: true, force: true }));
  const collections = await linkCollection(work);
  const ports = await freePorts(HOSTS.length);
  const hosts: Host[] = [];
  for (const [i, name] of HOSTS.entries()) {
    const dir = join(work, name);
    const appsDir = join(dir, 'apps.d');
    await mkdir(appsDir, { recursive: true, mode: 0o755 });
    hosts.push({ name, dir, appsDir, config: join(dir, 'supervisor.toml'), port: ports[i]! });
  }
  const secret = `fleet-secret-${randomBytes(12).toString('hex')}`;
  // The value of an env-only change, given through a vars file: never on a command line.
  const secret2 = `fleet-secret2-${randomBytes(12).toString('hex')}`;
  const secretVars = join(work, 'secret2.json');
  await writeFile(secretVars, JSON.stringify({ shop_secret: secret2 }), { mode: 0o600 });
  const inventory = join(work, 'inventory.json');
  await writeFile(inventory, inventoryOf(hosts, secret));
  const ansibleLog = join(work, 'ansible.log');
  await mkdir(join(work, 'ansible-tmp'));
  let everything = '';
  // `onOutput` sees Ansible's output as it comes, all of it so far.
  const playbookWatched = async (onOutput: (soFar: string) => void, name: string, ...args: string[]) => {
    const child = execa('ansible-playbook', ['-i', inventory, `dstack.supervisor.${name}`, ...args], {
      reject: false,
      all: true,
      env: {
        ANSIBLE_COLLECTIONS_PATH: collections,
        ANSIBLE_LOG_PATH: ansibleLog,
        ANSIBLE_LOCAL_TEMP: join(work, 'ansible-tmp'),
        ANSIBLE_REMOTE_TMP: join(work, 'ansible-tmp'),
        ANSIBLE_NOCOLOR: '1',
        ANSIBLE_RETRY_FILES_ENABLED: '0',
      },
    });
    let soFar = '';
    child.all.on('data', (chunk: Buffer) => onOutput((soFar += chunk.toString())));
    const result = await child;
    everything += result.all;
    return { code: result.exitCode, out: result.all, recap: recapOf(result.all) };
  };
  const playbook = (name: string, ...args: string[]) => playbookWatched(() => undefined, name, ...args);

  // The host role writes each supervisor.toml (no package, no service: the test runs them).
  const setup = await playbook('host', '-e', 'host_wait_ready=false');
  assert.equal(setup.code, 0, setup.out);
  const children: ResultPromise[] = [];
  for (const host of hosts) {
    const child = execa(process.execPath, [BIN, 'run', '--config', host.config, '--log-format', 'json'], {
      reject: false,
      env: { DSTACK_SUPERVISOR_CONFIG: '' },
      stdout: { file: join(host.dir, 'supervisor.log') },
      stderr: { file: join(host.dir, 'supervisor.err') },
    });
    children.push(child);
    defer(t, async () => {
      child.kill('SIGTERM');
      await child;
    });
  }

  await t.test('the host role waits until every supervisor is ready, its supervisor.toml unchanged', async () => {
    const ready = await playbook('host');
    assert.equal(ready.code, 0, ready.out);
    for (const h of HOSTS) assert.deepEqual(ready.recap.get(h), { ok: ready.recap.get(h)!.ok, changed: 0, failed: 0 }, ready.out);
  });

  await t.test('an app reaches running on all three, its files owned by [apps] owner', async () => {
    const run = await playbook('app', '-v');
    assert.equal(run.code, 0, run.out);
    for (const host of hosts) {
      const [shop] = await appsOf(host);
      assert.equal(shop?.phase, 'running', `${host.name}: ${JSON.stringify(shop)}`);
      const yaml = await stat(join(host.appsDir, 'shop.yaml'));
      const env = await stat(join(host.appsDir, 'shop.env'));
      assert.equal(yaml.uid, process.getuid?.() ?? 0);
      assert.equal(yaml.mode & 0o777, 0o644);
      assert.equal(env.uid, process.getuid?.() ?? 0);
      assert.equal(env.mode & 0o777, 0o600);
    }
  });

  await t.test('a second run is changed=0 and touches no file', async () => {
    const before = await Promise.all(hosts.map((h) => stat(join(h.appsDir, 'shop.yaml'))));
    const again = await playbook('app');
    assert.equal(again.code, 0, again.out);
    for (const h of HOSTS) assert.equal(again.recap.get(h)?.changed, 0, again.out);
    const after = await Promise.all(hosts.map((h) => stat(join(h.appsDir, 'shop.yaml'))));
    assert.deepEqual(after.map((s) => [s.ino, s.mtimeMs]), before.map((s) => [s.ino, s.mtimeMs]));
  });

  await t.test('a changed compose rolls through one host at a time', async () => {
    const old = await Promise.all(hosts.map(async (h) => (await appsOf(h))[0]!.compose_hash));
    const roll = await playbook('app', '-e', 'shop_image=nginx:1.28-alpine');
    assert.equal(roll.code, 0, roll.out);
    // serial: 1 makes one play run per host, in inventory order.
    const plays = [...roll.out.matchAll(/^PLAY \[Deploy dstack apps\]/gm)].length;
    assert.equal(plays, HOSTS.length, roll.out);
    for (const [i, host] of hosts.entries()) {
      const [shop] = await appsOf(host);
      assert.equal(shop?.phase, 'running');
      assert.notEqual(shop?.compose_hash, old[i]);
      assert.match(await readFile(join(host.appsDir, 'shop.yaml'), 'utf8'), /nginx:1\.28-alpine/);
    }
  });

  // Values are not in the compose hash: before env_digest the role saw "hash H running" at once
  // and returned while the VMs still ran the old values. A simulated VM restarts faster than
  // Ansible gets from writing the file to reading the status, which hid that; so each host's
  // supervisor is paused (SIGSTOP) until the role has read the status once and is still waiting.
  await t.test('an env-only change: the role returns once each VM was restarted with the new values', async (st) => {
    const image = ['-e', 'shop_image=nginx:1.28-alpine'];
    const before = await Promise.all(hosts.map(async (h) => ({ status: (await appsOf(h))[0]!, vm: await shopVmOf(h) })));
    const paused = new Set(children.map((c) => c.pid!));
    const resume = (pid: number) => paused.delete(pid) && process.kill(pid, 'SIGCONT');
    defer(st, () => [...paused].forEach(resume));
    for (const pid of paused) process.kill(pid, 'SIGSTOP');
    const run = await playbookWatched((soFar) => {
      for (const [i, h] of HOSTS.entries()) {
        if (soFar.includes(`FAILED - RETRYING: [${h}]: Read the status until`)) resume(children[i]!.pid!);
      }
    }, 'app', '-v', ...image, '-e', `@${secretVars}`);
    assert.equal(run.code, 0, run.out);
    assert.equal(paused.size, 0, `the role did not wait on ${paused.size} hosts whose supervisor was paused:\n${run.out}`);
    for (const h of HOSTS) assert.equal(run.recap.get(h)?.changed, 1, `${h}: shop.env rewritten\n${run.out}`);
    for (const [i, host] of hosts.entries()) {
      const [shop] = await appsOf(host);
      const vm = await shopVmOf(host);
      const expected = await hashOf(host);
      // The role's last read of the status, when it stopped waiting: the restart was over.
      const last = lastStatusRead(run.out, host.name).find((a) => a.app === 'shop');
      assert.deepEqual([last?.phase, last?.env_digest], ['running', expected.env_digest], `${host.name}: the role returned before the restart\n${run.out}`);
      assert.equal(shop?.phase, 'running', host.name);
      assert.equal(shop?.compose_hash, before[i]!.status.compose_hash, `${host.name}: a value change keeps the compose hash`);
      assert.match(shop?.env_digest ?? '', /^[0-9a-f]{64}$/);
      assert.notEqual(shop?.env_digest, before[i]!.status.env_digest, `${host.name}: env_digest moved`);
      assert.equal(shop?.env_digest, expected.env_digest, `${host.name}: the status reports the digest shop.env has now`);
      assert.equal(vm.id, before[i]!.vm.id, `${host.name}: the same VM, restarted`);
      assert.notEqual(vm.encryptedEnv, before[i]!.vm.encryptedEnv, `${host.name}: dstack-vmm holds the newly sealed env`);
      assert.equal(vm.status, 'running/done', host.name);
    }
    const again = await playbook('app', ...image, '-e', `@${secretVars}`);
    assert.equal(again.code, 0, again.out);
    for (const h of HOSTS) assert.equal(again.recap.get(h)?.changed, 0, again.out);
  });

  await t.test('a compose the supervisor refuses stops the roll at the first host with its message', async () => {
    const bad = await playbook('app', '-e', 'shop_image=nginx:1.29-alpine', '-e', 'shop_port=80x', '-e', `@${secretVars}`);
    assert.notEqual(bad.code, 0);
    assert.match(bad.out, /shop on h1 \([^)]*\): phase invalid \(APP_PORTS\): .*host port \\?"80x\\?" is not a port/, bad.out);
    assert.equal(bad.recap.get('h1')?.failed, 1, bad.out);
    assert.equal(bad.recap.has('h2'), false, 'the roll stopped before h2');
    for (const host of hosts.slice(1)) {
      assert.match(await readFile(join(host.appsDir, 'shop.yaml'), 'utf8'), /nginx:1\.28-alpine/, `${host.name} untouched`);
      assert.equal((await appsOf(host))[0]?.phase, 'running');
    }
  });

  await t.test('fleet_status prints one table of every host', async () => {
    const table = await playbook('fleet_status');
    assert.equal(table.code, 0, table.out);
    assert.match(table.out, /"HOST +APP +PHASE +HASH +URL +ERROR"/);
    assert.match(table.out, /"h1 +shop +invalid +[0-9a-f]{12} +http:\/\/\S+ +APP_PORTS: /);
    assert.match(table.out, /"h2 +shop +running +[0-9a-f]{12} +http:\/\/\S+ +-"/);
    assert.match(table.out, /"h3 +shop +running /);
  });

  await t.test('state absent removes the app everywhere', async () => {
    const gone = await playbook('app', '-e', 'shop_state=absent', '-e', `@${secretVars}`);
    assert.equal(gone.code, 0, gone.out);
    for (const host of hosts) {
      assert.deepEqual(await readdir(host.appsDir), []);
      assert.deepEqual(await appsOf(host), []);
    }
  });

  await t.test('no env value appears in any Ansible output or log', async () => {
    const logs = [everything, await readFile(ansibleLog, 'utf8')];
    for (const host of hosts) logs.push(await readFile(join(host.dir, 'supervisor.log'), 'utf8'), await readFile(join(host.dir, 'supervisor.err'), 'utf8'));
    for (const text of logs) assert.equal(text.includes(secret) || text.includes(secret2), false);
    assert.match(everything, /env file \(secrets, 0600\) of shop/, 'the env file was written (and its task censored)');
  });
});
