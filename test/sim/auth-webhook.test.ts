import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startAuthWebhook } from '../../src/sim/auth-webhook.ts';
import { makeTempDir, writeJson } from './fixtures.ts';
import { defer } from '../helpers/cleanup.ts';

const OS = 'ab'.repeat(32);
const APP = 'cd'.repeat(20);
const HASH = 'ef'.repeat(32);
const BOOT = {
  mrAggregated: '01'.repeat(48),
  osImageHash: OS,
  appId: APP,
  composeHash: HASH,
  instanceId: '02'.repeat(20),
  deviceId: '03'.repeat(32),
  tcbStatus: 'UpToDate',
  advisoryIds: [],
};

async function startWebhook(t: TestContext) {
  const dir = await makeTempDir(t, 'webhook-');
  const configPath = join(dir, 'auth-config.json');
  const webhook = await startAuthWebhook({ configPath });
  defer(t, () => webhook.close());
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${webhook.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json().catch(() => null)) as Record<string, unknown> | null };
  };
  return { webhook, configPath, post };
}

test('GET / reports status ok and the config identity fields', async (t) => {
  const { webhook, configPath } = await startWebhook(t);
  await writeJson(configPath, { gatewayAppId: 'gw-1', chainId: 7 });
  assert.match(webhook.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const res = await fetch(`${webhook.url}/`);
  assert.deepEqual(await res.json(), {
    status: 'ok',
    kmsContractAddr: '0x0000000000000000000000000000000000000000',
    gatewayAppId: 'gw-1',
    chainId: 7,
    appAuthImplementation: '0x0000000000000000000000000000000000000000',
    appImplementation: '0x0000000000000000000000000000000000000000',
  });
});

test('the config is re-read on every request; missing or torn files deny everything', async (t) => {
  const { configPath, post } = await startWebhook(t);
  const deny = { isAllowed: false, reason: 'OS image is not allowed', gatewayAppId: '' };
  assert.deepEqual((await post('/bootAuth/app', BOOT)).body, deny);

  await writeJson(configPath, { osImages: [OS], apps: { [APP]: { composeHashes: [HASH] } } });
  assert.deepEqual((await post('/bootAuth/app', BOOT)).body, { isAllowed: true, reason: '', gatewayAppId: '' });

  await writeJson(configPath, { osImages: [OS], apps: {} });
  assert.equal((await post('/bootAuth/app', BOOT)).body?.reason, 'app not registered');

  await writeFile(configPath, '{"osImages": ["');
  assert.deepEqual((await post('/bootAuth/app', BOOT)).body, deny);
  await writeJson(configPath, { osImages: 'not-a-list' });
  assert.deepEqual((await post('/bootAuth/app', BOOT)).body, deny);
  await rm(configPath);
  assert.deepEqual((await post('/bootAuth/app', BOOT)).body, deny);
});

test('/bootAuth/kms applies the KMS rules; the app entry does not matter', async (t) => {
  const { configPath, post } = await startWebhook(t);
  await writeJson(configPath, { osImages: [OS], kms: { mrAggregated: [] } });
  assert.equal((await post('/bootAuth/kms', BOOT)).body?.reason, 'aggregated MR not allowed');
  await writeJson(configPath, { osImages: [OS], kms: { mrAggregated: [BOOT.mrAggregated] } });
  assert.equal((await post('/bootAuth/kms', BOOT)).body?.isAllowed, true);
});

test('a request missing a required field or with broken JSON is a 400; unknown paths 404', async (t) => {
  const { webhook, post } = await startWebhook(t);
  const { composeHash: _dropped, ...partial } = BOOT;
  const missing = await post('/bootAuth/app', partial);
  assert.equal(missing.status, 400);
  assert.equal(missing.body?.success, false);
  assert.equal((await post('/bootAuth/app', '{nope')).status, 400);
  assert.equal((await fetch(`${webhook.url}/bootAuth/other`, { method: 'POST' })).status, 404);
});
