// `[init] kms_host_address`: the host address the KMS CVM's port is published on besides
// loopback, so another host's KMS replica can reach it. 127.0.0.2 stands for a LAN address:
// Linux routes all of 127/8 to lo, and this machine has no other interface.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { Agent, request } from 'undici';
import { InitSectionSchema } from '../../src/init/config-schema.ts';
import { InitError } from '../../src/init/errors.ts';
import { isPortFree } from '../../src/init/kms-port.ts';
import { renderHostConfig } from '../../src/init/render.ts';
import { initIn, tempDir } from './helpers.ts';
import { defer } from '../helpers/cleanup.ts';
import { startInitStage, type Stage } from './stage.ts';

// The KMS's /health over HTTPS at host:port: its status code, or the connection error's code.
async function healthAt(t: TestContext, host: string, port: number): Promise<number | string> {
  const agent = new Agent({ connect: { rejectUnauthorized: false } });
  defer(t, () => agent.close());
  return request(`https://${host}:${port}/health`, { dispatcher: agent }).then(
    async (res) => {
      await res.body.dump();
      return res.statusCode;
    },
    (err: unknown) => String((err as { code?: unknown }).code),
  );
}

// The KMS CVM's port map as the VMM reports it, in a fixed order.
async function kmsPorts(stage: Stage, vmId: string): Promise<unknown[]> {
  const { info } = await stage.vmm.getInfo(vmId);
  const ports = info?.configuration?.ports ?? [];
  return ports.map((p) => ({ ...p })).sort((a, b) => a.host_address.localeCompare(b.host_address));
}

test('[init] kms_host_address defaults to 127.0.0.1 and takes only an IPv4 address', () => {
  assert.equal(InitSectionSchema.parse({}).kms_host_address, '127.0.0.1');
  for (const good of ['0.0.0.0', '192.0.2.10', '127.0.0.2']) assert.equal(InitSectionSchema.parse({ kms_host_address: good }).kms_host_address, good);
  // A name is not an IP address to the VMM; IPv6 breaks the VMM's bracket-less hostfwd rule.
  for (const bad of ['host-a', 'localhost', '::', '::1', '10.0.0', '']) {
    const parsed = InitSectionSchema.safeParse({ kms_host_address: bad });
    assert.equal(parsed.success, false, bad);
    assert.match(parsed.error?.issues[0]?.message ?? '', /must be an IPv4 address/);
  }
});

test('the free-port probe binds the address asked for: a port taken on 127.0.0.2 only is busy there, free on 127.0.0.1', async (t) => {
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.2', resolve));
  defer(t, () => new Promise<void>((resolve) => holder.close(() => resolve())));
  const port = (holder.address() as { port: number }).port;
  assert.equal(await isPortFree('127.0.0.2', port), false);
  assert.equal(await isPortFree('127.0.0.1', port), true);
});

test('render: the auto KMS port is free on loopback and on kms_host_address; init reaches the KMS on 127.0.0.1 still', async (t) => {
  const root = await tempDir(t);
  const init = initIn(root, { kms_host_address: '127.0.0.2' });
  const probed: string[] = [];
  const rendered = await renderHostConfig({
    init,
    vmmUrl: 'unix:/var/run/dstack/vmm.sock',
    authConfigPath: join(root, 'etc', 'auth-config.json'),
    osImagePin: 'a'.repeat(64),
    platform: 'tdx',
    // 9201 is taken on 127.0.0.2 only.
    isPortFree: async (address, port) => {
      probed.push(`${address}:${port}`);
      return !(address === '127.0.0.2' && port === 9201);
    },
  });
  assert.equal(rendered.kmsPort, 9202);
  assert.deepEqual(probed, ['127.0.0.1:9201', '127.0.0.2:9201', '127.0.0.1:9202', '127.0.0.2:9202']);
  const vmmToml = parseToml(await readFile(join(init.config_dir, 'vmm.toml'), 'utf8'));
  assert.equal(vmmToml['kms_url'], 'https://127.0.0.1:9202');
});

test('render: a kms_host_address that is not this host\'s is refused before anything is written', async (t) => {
  const root = await tempDir(t);
  // TEST-NET-1 (RFC 5737): never an address of this machine.
  const init = initIn(root, { kms_host_address: '192.0.2.10', kms_port: 9300 });
  const err = await renderHostConfig({ init, vmmUrl: 'unix:/var/run/dstack/vmm.sock', authConfigPath: join(root, 'etc', 'auth-config.json'), osImagePin: 'a'.repeat(64), platform: 'tdx' }).catch((e: unknown) => e);
  assert.ok(err instanceof InitError, String(err));
  assert.equal(err.code, 'INIT_RENDER');
  assert.match(err.message, /\[init\] kms_host_address = "192\.0\.2\.10" is not an address of this host/);
  assert.equal(existsSync(init.config_dir), false);
});

test('init publishes the KMS on 127.0.0.1 and kms_host_address, and the simulated forward listens on both and nowhere else', async (t) => {
  const stage = await startInitStage(t, { init: { kms_host_address: '127.0.0.2' } });
  const { kms } = await stage.init();
  assert.deepEqual(await kmsPorts(stage, kms.vmId), [
    { protocol: 'tcp', host_address: '127.0.0.1', host_port: stage.kmsPort, vm_port: 8000 },
    { protocol: 'tcp', host_address: '127.0.0.2', host_port: stage.kmsPort, vm_port: 8000 },
  ]);
  assert.equal(kms.hostUrl, `https://127.0.0.1:${stage.kmsPort}`);
  assert.equal(await healthAt(t, '127.0.0.2', stage.kmsPort), 200);
  assert.equal(await healthAt(t, '127.0.0.1', stage.kmsPort), 200);
  assert.equal(await healthAt(t, '127.0.0.3', stage.kmsPort), 'ECONNREFUSED');
});

test('kms_host_address = 0.0.0.0 is one wildcard mapping, which loopback reaches', async (t) => {
  const stage = await startInitStage(t, { init: { kms_host_address: '0.0.0.0' } });
  const { kms } = await stage.init();
  assert.deepEqual(await kmsPorts(stage, kms.vmId), [{ protocol: 'tcp', host_address: '0.0.0.0', host_port: stage.kmsPort, vm_port: 8000 }]);
  assert.equal(await healthAt(t, '127.0.0.3', stage.kmsPort), 200);
});

test('a KMS with keys moves to a new kms_host_address in place: UpdateVm and a restart, same CVM, same keys; and back', async (t) => {
  const stage = await startInitStage(t, { realHost: true });
  const first = await stage.init();
  assert.equal(await healthAt(t, '127.0.0.2', stage.kmsPort), 'ECONNREFUSED');

  const moved = { ...stage.config, init: { ...stage.config.init, kms_host_address: '127.0.0.2' } };
  const second = await stage.init({ config: moved });
  assert.equal(second.kms.vmId, first.kms.vmId);
  assert.equal(second.kms.k256Pubkey, first.kms.k256Pubkey);
  assert.deepEqual(stage.mutations(), ['CreateVm', 'UpdateVm', 'StopVm', 'StartVm']);
  assert.equal(await healthAt(t, '127.0.0.2', stage.kmsPort), 200);
  assert.ok(stage.logs.some((l) => String(l.fields['msg']).includes(`from 127.0.0.1 to 127.0.0.1, 127.0.0.2 ([init] kms_host_address)`)));

  // Applied is applied: a re-run changes nothing.
  await stage.init({ config: moved });
  assert.deepEqual(stage.mutations(), ['CreateVm', 'UpdateVm', 'StopVm', 'StartVm']);

  const back = await stage.init();
  assert.equal(back.kms.k256Pubkey, first.kms.k256Pubkey);
  assert.deepEqual(stage.mutations(), ['CreateVm', 'UpdateVm', 'StopVm', 'StartVm', 'UpdateVm', 'StopVm', 'StartVm']);
  assert.equal(await healthAt(t, '127.0.0.2', stage.kmsPort), 'ECONNREFUSED');
});
