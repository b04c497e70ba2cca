// Issue 17 part 2 through the collection: the host role performs both sides' `kms allow` from
// host_kms_allow, and a host whose [init] kms_onboard_from names another's KMS becomes its
// replica. Two simulated hosts on this machine, each its own directory and running supervisor
// (init included, with its own simulated dstack-vmm and KMS), reached with ansible_connection=local.
// Needs ansible-playbook (apt package ansible-core, which .ci/run installs); elsewhere the test
// says why it did not run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { Agent, request } from 'undici';
import { defer } from '../helpers/cleanup.ts';
import { freePorts } from '../helpers/harness.ts';
import { BIN, linkCollection, localHostVars, simHostPaths, whyNoAnsible } from './local-hosts.ts';


const notRun = await whyNoAnsible();

type Host = { name: 'a' | 'b'; dir: string; config: string; kmsPort: number; allow: Array<{ mr_aggregated: string; os_image_hash: string }> };
type Measurement = { mr_aggregated: string; os_image_hash: string };

// The inventory: per-host paths, supervisor.toml as host_config (a publishes its KMS on
// 127.0.0.2, standing for its LAN address, and b onboards from there) and host_kms_allow as the
// test has learnt it so far.
function inventoryOf(hosts: Host[], sourcePort: number): string {
  const hostVars = Object.fromEntries(
    hosts.map((h) => [
      h.name,
      {
        ...localHostVars(h.config),
        host_kms_allow: h.allow,
        host_config: {
          ...simHostPaths(h.dir, join(h.dir, 'apps.d'), join(h.dir, 'etc', 'auth-config.json')),
          init: {
            config_dir: join(h.dir, 'etc'),
            data_dir: join(h.dir, 'data'),
            run_dir: join(h.dir, 'run'),
            images_dir: join(h.dir, 'data', 'images'),
            kms_port: h.kmsPort,
            ...(h.name === 'a' ? { kms_host_address: '127.0.0.2' } : { kms_onboard_from: `https://127.0.0.2:${sourcePort}` }),
          },
          apps: { owner: process.getuid?.() ?? 0 },
          sim: { enabled: true, dir: join(h.dir, 'sim') },
        },
      },
    ]),
  );
  return JSON.stringify({ all: { children: { dstack: { hosts: hostVars, vars: { dstack_become: false, host_package_installed: true, host_manage_service: false } } } } });
}

function changedOf(out: string, host: string): number {
  const m = new RegExp(`^${host}\\s*:\\s*ok=\\d+\\s+changed=(\\d+)`, 'm').exec(out);
  return Number(m?.[1] ?? -1);
}

test('issue 17: the host role allows both sides and b becomes a KMS replica of a', { skip: notRun, timeout: 300_000 }, async (t) => {
  const work = await mkdtemp(join(tmpdir(), 'dstack-kms-replica-'));
  defer(t, () => rm(work, { recursive: true, force: true }));
  const collections = await linkCollection(work);
  await mkdir(join(work, 'ansible-tmp'));
  const [portA, portB] = await freePorts(2);
  const hosts: Host[] = (['a', 'b'] as const).map((name, i) => ({ name, dir: join(work, name), config: join(work, name, 'supervisor.toml'), kmsPort: [portA!, portB!][i]!, allow: [] }));
  for (const h of hosts) await mkdir(join(h.dir, 'apps.d'), { recursive: true, mode: 0o755 });
  const [a, b] = hosts as [Host, Host];
  const inventory = join(work, 'inventory.json');
  const playbook = async (limit: string, ...args: string[]) => {
    await writeFile(inventory, inventoryOf(hosts, a.kmsPort));
    const result = await execa('ansible-playbook', ['-i', inventory, 'dstack.supervisor.host', '--limit', limit, ...args], {
      reject: false,
      all: true,
      env: { ANSIBLE_COLLECTIONS_PATH: collections, ANSIBLE_LOCAL_TEMP: join(work, 'ansible-tmp'), ANSIBLE_REMOTE_TMP: join(work, 'ansible-tmp'), ANSIBLE_NOCOLOR: '1', ANSIBLE_RETRY_FILES_ENABLED: '0' },
    });
    return { code: result.exitCode, out: result.all };
  };
  const start = (host: Host): ResultPromise => {
    const child = execa(process.execPath, [BIN, 'run', '--config', host.config, '--log-format', 'text'], { reject: false, all: true, env: { DSTACK_SUPERVISOR_CONFIG: '' } });
    defer(t, async () => {
      child.kill('SIGTERM');
      await child;
    });
    return child;
  };
  const measure = async (host: Host): Promise<Measurement> =>
    JSON.parse((await execa(process.execPath, [BIN, 'kms', 'measurement', '--json', '--config', host.config])).stdout) as Measurement;

  // a: an ordinary host; its KMS bootstraps its own keys.
  assert.equal((await playbook('a', '-e', 'host_wait_ready=false')).code, 0);
  start(a);
  const ready = await playbook('a');
  assert.equal(ready.code, 0, ready.out);
  const source = await measure(a);

  // b trusts a's KMS (the role runs kms allow before the service starts) and is refused by a.
  b.allow = [{ mr_aggregated: source.mr_aggregated, os_image_hash: source.os_image_hash }];
  const trusting = await playbook('b', '-e', 'host_wait_ready=false');
  assert.equal(trusting.code, 0, trusting.out);
  assert.equal(changedOf(trusting.out, 'b'), 2, trusting.out);
  const refused = await start(b);
  const said = String(refused.all);
  assert.equal(refused.exitCode, 78, said);
  assert.match(said, /INIT_KMS_ONBOARD_DENIED/);
  const line = /run `dstack-supervisor kms allow ([0-9a-f]{64}) --os-image ([0-9a-f]{64})`/.exec(said);
  assert.ok(line !== null, said);

  // The step on a, performed by the role; then b completes.
  a.allow = [{ mr_aggregated: line[1]!, os_image_hash: line[2]! }];
  const allowing = await playbook('a');
  assert.equal(allowing.code, 0, allowing.out);
  assert.equal(changedOf(allowing.out, 'a'), 1, allowing.out);
  start(b);
  const onboarded = await playbook('b');
  assert.equal(onboarded.code, 0, onboarded.out);
  const journal = JSON.parse(await readFile(join(b.dir, 'state', 'init.json'), 'utf8')) as { steps: { kms: { detail: Record<string, unknown> } } };
  assert.equal(journal.steps.kms.detail['onboarded_from'], `https://127.0.0.2:${a.kmsPort}`);

  // Both KMSes sign with the same root key.
  const agent = new Agent({ connect: { rejectUnauthorized: false } });
  defer(t, () => agent.close());
  const k256 = async (port: number) => {
    const res = await request(`https://127.0.0.1:${port}/prpc/GetMeta?json`, { dispatcher: agent, method: 'POST', body: '{}' });
    return ((await res.body.json()) as { k256_pubkey: string }).k256_pubkey;
  };
  assert.equal(await k256(b.kmsPort), await k256(a.kmsPort));

  // Nothing left to do on either host.
  const again = await playbook('all');
  assert.equal(again.code, 0, again.out);
  assert.deepEqual([changedOf(again.out, 'a'), changedOf(again.out, 'b')], [0, 0], again.out);
});
