import { encryptEnv } from '../../src/secrets/encrypt.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { hashCompose } from '../../src/sim/vm-rules.ts';
import { createVmmClient } from '../../src/vmm/client.ts';
import type { VmInfo } from '../../src/vmm/messages.ts';
import { appCompose, startTestHost } from './fixtures.ts';
import { defer } from '../helpers/cleanup.ts';

const byId = (id: string) => (vms: VmInfo[]) => vms.find((vm) => vm.id === id);

for (const mode of ['protobuf', 'json'] as const) {
  test(`every prpc method end to end through the real client (${mode})`, async (t) => {
    // A removal slow enough to observe `removing` even on a loaded machine.
    const kms = { kmsUrl: 'https://10.0.2.2:9201', kmsUrls: ['https://10.0.2.2:9201'] };
    const host = await startTestHost(t, { token: 'tok', removeDelayMs: 300, ...kms });
    const client = createVmmClient({ url: host.vmmUrl, tokenFile: host.tokenFile, mode });
    defer(t, () => client.close());

    assert.deepEqual(await client.version(), { version: '0.5.11', rev: 'simulated' });
    assert.deepEqual((await client.listImages()).map((i) => i.name), ['dstack-0.5.11']);
    assert.deepEqual((await client.getMeta()).kms, { url: 'https://10.0.2.2:9201', urls: ['https://10.0.2.2:9201'] });

    const compose = appCompose('web');
    const config = { name: 'web', image: 'dstack-0.5.11', compose_file: compose, vcpu: 1, memory: 1024, disk_size: 10 };
    assert.equal(await client.getComposeHash(config), hashCompose(compose));
    // A real sealed env (no variables): the guest opens it at boot, as a real one would.
    const sealed = encryptEnv([], host.envKeys.keyPairOf(hashCompose(compose).slice(0, 40)).publicKeyHex);
    const { id } = await client.createVm({ ...config, encrypted_env: sealed });
    assert.match(id, /^[0-9a-f-]{36}$/);
    await host.state.waitFor((vms) => byId(id)(vms)?.boot_progress === 'done');

    const info = await client.getInfo(id);
    assert.equal(info.found, true);
    assert.equal(info.info?.configuration?.encrypted_env, sealed);
    assert.equal(info.info?.app_id, hashCompose(compose).slice(0, 40));
    assert.deepEqual(await client.getInfo('nope'), { found: false });
    assert.deepEqual((await client.status({ brief: true })).vms.map((vm) => [vm.name, vm.status, vm.configuration]), [
      ['web', 'running', undefined],
    ]);

    const next = appCompose('web', { extra: { version: 2 } });
    const resealed = encryptEnv([], host.envKeys.keyPairOf(hashCompose(compose).slice(0, 40)).publicKeyHex);
    assert.deepEqual(await client.updateVm({ id, compose_file: next, encrypted_env: resealed }), { id: hashCompose(next).slice(0, 40) });
    assert.equal(host.state.get(id)?.boot_progress, 'done');
    // UpdateVm reaches the guest only at its next start.
    assert.deepEqual([host.state.launchedCompose(id), host.state.launchedEnv(id)], [compose, sealed]);

    await client.shutdownVm(id);
    await host.state.waitFor((vms) => byId(id)(vms)?.status === 'stopped');
    assert.deepEqual([host.state.launchedCompose(id), host.state.launchedEnv(id)], ['', '']);
    await client.startVm(id);
    await host.state.waitFor((vms) => byId(id)(vms)?.boot_progress === 'done');
    assert.deepEqual([host.state.launchedCompose(id), host.state.launchedEnv(id)], [next, resealed]);
    await client.stopVm(id);
    assert.equal(host.state.get(id)?.status, 'stopped');

    const key = await client.getAppEnvEncryptPubKey(`0x${info.info?.app_id ?? ''}`);
    assert.equal(key.public_key, host.envKeys.keyPairOf(info.info?.app_id ?? '').publicKeyHex);
    assert.equal(key.public_key.length, 64);

    await client.removeVm(id);
    assert.equal(host.state.get(id)?.status, 'removing');
    await host.state.waitFor((vms) => vms.length === 0);
    await assert.rejects(client.removeVm(id), { code: 'VMM_RPC', vmmMessage: 'Failed to remove VM: VM not found' });
  });
}

test('waitFor with a Status filter looks only at the VMs it selects', async (t) => {
  const host = await startTestHost(t);
  const client = createVmmClient({ url: host.vmmUrl, tokenFile: host.tokenFile });
  defer(t, () => client.close());
  const config = (name: string) => ({ name, image: 'dstack-0.5.11', compose_file: appCompose(name), vcpu: 1, memory: 1024, disk_size: 10 });
  await client.createVm(config('other'));
  const seen: string[][] = [];
  const web = host.state.waitFor(
    (vms) => {
      seen.push(vms.map((vm) => vm.name));
      return vms.some((vm) => vm.name === 'web');
    },
    5000,
    { keyword: 'web', brief: true },
  );
  await client.createVm(config('web'));
  assert.deepEqual((await web).map((vm) => [vm.name, vm.configuration]), [['web', undefined]]);
  assert.ok(seen.every((names) => names.every((name) => name === 'web')), `only web was looked at: ${JSON.stringify(seen)}`);
});

test('the host creates dir/vmm.sock and a 0600 token file; stop() removes the socket', async (t) => {
  const host = await startTestHost(t, { token: 'abc' });
  assert.ok((await stat(host.socketPath)).isSocket());
  assert.equal(host.vmmUrl, `unix:${host.socketPath}`);
  assert.equal((await stat(host.tokenFile ?? '')).mode & 0o777, 0o600);
  const unauthenticated = createVmmClient({ url: host.vmmUrl });
  defer(t, () => unauthenticated.close());
  await assert.rejects(unauthenticated.version(), { code: 'VMM_UNAUTHORIZED' });
  await host.stop();
  await assert.rejects(stat(host.socketPath), { code: 'ENOENT' });
});

test('GetAppEnvEncryptPubKey without a top-level kms_url fails like dstackup renders it', async (t) => {
  const host = await startTestHost(t);
  const client = createVmmClient({ url: host.vmmUrl });
  defer(t, () => client.close());
  await assert.rejects(client.getAppEnvEncryptPubKey('ab'), { code: 'VMM_RPC', vmmMessage: 'KMS is not configured' });
});
