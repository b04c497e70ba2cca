import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { hashCompose } from '../../src/sim/vm-rules.ts';
import type { SimHostOptions } from '../../src/sim/host.ts';
import { createVmmClient } from '../../src/vmm/client.ts';
import { appCompose, authConfigFor, startTestHost, writeJson } from './fixtures.ts';
import { defer } from '../helpers/cleanup.ts';

const KMS_URLS = ['https://10.0.2.2:9201'];

async function kmsHost(t: TestContext, options: Partial<SimHostOptions> = {}) {
  const host = await startTestHost(t, { kmsUrls: KMS_URLS, ...options });
  const client = createVmmClient({ url: host.vmmUrl, mode: 'json' });
  defer(t, () => client.close());
  const compose = appCompose('vault', { kms: true });
  const appId = hashCompose(compose).slice(0, 40);
  const deploy = async (composeFile = compose) =>
    (await client.createVm({ name: 'vault', image: 'dstack-0.5.11', compose_file: composeFile, app_id: appId })).id;
  const settled = (id: string) =>
    host.state.waitFor((vms) => {
      const vm = vms.find((v) => v.id === id);
      return vm?.boot_progress === 'done' || vm?.status === 'exited';
    });
  return { host, client, compose, appId, deploy, settled };
}

test('an unregistered KMS-mode app fails at "requesting app keys" and ends exited', async (t) => {
  const { host, deploy, settled } = await kmsHost(t);
  await writeJson(host.authConfigPath, authConfigFor({ deadbeef: [] }));
  const id = await deploy();
  await settled(id);
  const vm = host.state.get(id);
  assert.equal(vm?.status, 'exited');
  assert.equal(vm?.boot_progress, 'requesting app keys');
  assert.match(vm?.boot_error ?? '', /^Failed to request app keys: .*app not registered$/);
});

test('registering app id + compose hash in auth-config.json lets the next start boot', async (t) => {
  const { host, client, compose, appId, deploy, settled } = await kmsHost(t);
  const id = await deploy();
  await settled(id);
  assert.match(host.state.get(id)?.boot_error ?? '', /OS image is not allowed/);
  await writeJson(host.authConfigPath, authConfigFor({ [appId]: [hashCompose(compose)] }));
  await client.startVm(id);
  assert.equal(host.state.get(id)?.boot_error, '');
  await settled(id);
  assert.deepEqual([host.state.get(id)?.status, host.state.get(id)?.boot_progress], ['running', 'done']);
});

test('an upgrade whose new hash is not allowlisted is denied on the next boot, keeping the app id', async (t) => {
  const { host, client, compose, appId, deploy, settled } = await kmsHost(t);
  await writeJson(host.authConfigPath, authConfigFor({ [appId]: [hashCompose(compose)] }));
  const id = await deploy();
  await settled(id);
  const next = appCompose('vault', { kms: true, extra: { version: 2 } });
  await client.updateVm({ id, compose_file: next });
  await client.stopVm(id);
  await client.startVm(id);
  await settled(id);
  const vm = host.state.get(id);
  assert.equal(vm?.app_id, appId);
  assert.match(vm?.boot_error ?? '', /compose hash not allowed$/);
});

test('the simulated platform feeds auth-simple TCB rules; no kms_urls fails before the webhook', async (t) => {
  const outOfDate = await kmsHost(t, { platform: { tcbStatus: 'OutOfDate' } });
  await writeJson(outOfDate.host.authConfigPath, authConfigFor({ [outOfDate.appId]: [hashCompose(outOfDate.compose)] }));
  const denied = await outOfDate.deploy();
  await outOfDate.settled(denied);
  assert.match(outOfDate.host.state.get(denied)?.boot_error ?? '', /TCB status is not allowed$/);

  const noKms = await kmsHost(t, { kmsUrls: [] });
  const id = await noKms.deploy();
  await noKms.settled(id);
  assert.equal(noKms.host.state.get(id)?.boot_error, 'Failed to request app keys: No KMS URLs are set');
});

test('a non-KMS app boots without asking the webhook', async (t) => {
  const { host, client, settled } = await kmsHost(t);
  const { id } = await client.createVm({ name: 'plain', image: 'dstack-0.5.11', compose_file: appCompose('plain') });
  await settled(id);
  assert.equal(host.state.get(id)?.boot_progress, 'done');
});
