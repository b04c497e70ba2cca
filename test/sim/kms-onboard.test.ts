// The simulated KMS's onboarding exchange (upstream kms/src/onboard_service.rs), on the wire:
// which compose starts which mode, and the refusals each side makes.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpsRequest } from 'node:https';
import { Agent, request } from 'undici';
import { kmsAppCompose, kmsVmConfig } from '../../src/init/kms-compose.ts';
import { newKeyPem, selfSignedCa, signedLeaf } from '../../src/sim/kms-certs.ts';
import { kmsStartMode } from '../../src/sim/kms-onboard.ts';
import { DEFAULT_SIM_IMAGE } from '../../src/sim/vmm-config.ts';
import { createVmmClient } from '../../src/vmm/client.ts';
import { defer } from '../helpers/cleanup.ts';
import { authConfigFor, freePort, startTestHost, writeJson } from './fixtures.ts';

const onboardToml = '[core.onboard]\nenabled = true\nauto_bootstrap_domain = ""\n';
const bootstrapToml = '[core.onboard]\nenabled = true\nauto_bootstrap_domain = "10.0.2.2"\n';

test('the start mode of a keyless KMS follows [core.onboard] in the kms.toml its compose carries', () => {
  const cases: Array<[string, string]> = [
    [JSON.stringify({ name: 'dstack-kms' }), 'bootstrap'],
    [kmsAppCompose(bootstrapToml, 'kms.toml', 'tdx'), 'bootstrap'],
    [kmsAppCompose(onboardToml, 'kms.toml', 'tdx'), 'onboard'],
    [kmsAppCompose('[rpc]\nport = 8000\n', 'kms.toml', 'tdx'), 'onboard'],
    [kmsAppCompose('[core.onboard]\nenabled = false\nauto_bootstrap_domain = "10.0.2.2"\n', 'kms.toml', 'tdx'), 'disabled'],
  ];
  for (const [compose, mode] of cases) assert.equal(kmsStartMode(compose), mode, compose);
});

// A simulated host running one KMS CVM made from `kmsToml`; its port and a JSON POST helper.
async function kmsHost(t: TestContext, kmsToml: string) {
  const host = await startTestHost(t, { kmsBootstrapDelayMs: 0 });
  await writeJson(host.authConfigPath, authConfigFor({}));
  const client = createVmmClient({ url: host.vmmUrl, mode: 'json' });
  defer(t, () => client.close());
  const port = await freePort();
  await client.createVm(kmsVmConfig({ image: DEFAULT_SIM_IMAGE.name, composeFile: kmsAppCompose(kmsToml, 'kms.toml', 'tdx'), hostPort: port, hostAddress: '127.0.0.1' }));
  const agent = new Agent({ connect: { rejectUnauthorized: false } });
  defer(t, () => agent.close());
  const post = async (url: string, body: unknown) => {
    const res = await request(url, { dispatcher: agent, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
  };
  // Until the port answers `/health` in the given scheme (the KMS came up), or 5 s.
  const up = async (scheme: 'http' | 'https'): Promise<void> => {
    const deadline = Date.now() + 5_000;
    while (!(await request(`${scheme}://127.0.0.1:${port}/health`, { dispatcher: agent }).then(async (r) => (await r.body.text()) === 'OK', () => false))) {
      if (Date.now() > deadline) throw new Error(`no ${scheme} /health on ${port}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  return { host, port, post, up };
}

test('GetKmsKey and GetAppKey hand keys only to a caller whose client certificate the temp CA signed', async (t) => {
  const source = await kmsHost(t, bootstrapToml);
  await source.up('https');
  assert.deepEqual(await source.post(`https://127.0.0.1:${source.port}/prpc/GetKmsKey?json`, { vm_config: '' }), { status: 400, body: { error: 'No attestation provided' } });
  assert.deepEqual(await source.post(`https://127.0.0.1:${source.port}/prpc/GetAppKey?json`, { api_version: 1, vm_config: '' }), { status: 400, body: { error: 'App not allowed: No attestation provided' } });
  // An attestation signed by any other CA does not count.
  const stranger = signedLeaf(selfSignedCa(newKeyPem(), 'not the temp CA'), 'RA-TLS TEMP Cert', { attestation: { mrAggregated: 'ab'.repeat(32), osImageHash: '', appId: '', composeHash: '', instanceId: '', deviceId: '', tcbStatus: 'UpToDate', advisoryIds: [] } });
  const status = await new Promise<number>((resolve, reject) => {
    httpsRequest(`https://127.0.0.1:${source.port}/prpc/GetKmsKey?json`, { method: 'POST', agent: false, rejectUnauthorized: false, key: stranger.keyPem, cert: stranger.certPem }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject).end('{}');
  });
  assert.equal(status, 400);
});

test('an onboarding KMS refuses a source its own webhook does not allow, keeps no keys, and Finish leaves it onboarding', async (t) => {
  const source = await kmsHost(t, bootstrapToml);
  const replica = await kmsHost(t, onboardToml);
  await Promise.all([source.up('https'), replica.up('http')]);
  const onboard = `http://127.0.0.1:${replica.port}/prpc/Onboard.Onboard?json`;
  const refused = await replica.post(onboard, { source_url: `https://127.0.0.1:${source.port}`, domain: '10.0.2.2' });
  assert.deepEqual(refused, { status: 400, body: { error: 'Failed to onboard: Source KMS is not allowed for onboarding: boot denied: aggregated MR not allowed' } });
  const finished = await replica.post(`http://127.0.0.1:${replica.port}/prpc/Onboard.Finish?json`, {});
  assert.equal(finished.status, 200);
  // Still the Onboard service, in plain HTTP: no KMS RPC without keys.
  assert.equal((await replica.post(`http://127.0.0.1:${replica.port}/prpc/Onboard.GetAttestationInfo?json`, {})).status, 200);
  assert.notEqual(replica.host.envKeys.kmsPublicKeyHex, source.host.envKeys.kmsPublicKeyHex);
});
