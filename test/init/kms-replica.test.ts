// Issue 17 part 2: a KMS replica. Two simulated hosts on this machine, each with its own
// directories, ports and simulated host; B's init onboards its KMS from A's.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request as httpsRequest } from 'node:https';
import { Agent, request } from 'undici';
import { openAllowlist } from '../../src/auth/allowlist.ts';
import { InitSectionSchema } from '../../src/init/config-schema.ts';
import { InitError } from '../../src/init/errors.ts';
import { kmsAppCompose, kmsVmConfig } from '../../src/init/kms-compose.ts';
import { x25519PublicKeyHex } from '../../src/secrets/encrypt.ts';
import { verifyEnvPubkey } from '../../src/secrets/pubkey.ts';
import { signedLeaf } from '../../src/sim/kms-certs.ts';
import type { SimAttestation } from '../../src/sim/kms-attestation.ts';
import { readCvmMeasurement } from '../../src/vmm/guest-info.ts';
import type { PublicKeyResponse } from '../../src/vmm/messages.ts';
import { freePort } from '../sim/fixtures.ts';
import { defer } from '../helpers/cleanup.ts';
import { startInitStage, type Stage } from './stage.ts';

async function initFailure(promise: Promise<unknown>): Promise<InitError> {
  return promise.then(
    () => assert.fail('init passed'),
    (err: unknown) => {
      assert.ok(err instanceof InitError, `not an InitError: ${String(err)}`);
      return err;
    },
  );
}

// What `dstack-supervisor kms allow` does on `host`: list a KMS measurement in its auth-config.json.
async function allowKms(host: Stage, measurement: { mrAggregated: string; osImageHash: string }): Promise<void> {
  const allowlist = openAllowlist(host.config.auth.config_path);
  await allowlist.allowKms(measurement.mrAggregated, measurement.osImageHash);
  await allowlist.close();
}

// GetAppEnvEncryptPubKey over the KMS's HTTPS port, as vmm-cli.py --kms-url asks it.
async function envKeyFrom(t: TestContext, port: number, appId: string): Promise<PublicKeyResponse> {
  const agent = new Agent({ connect: { rejectUnauthorized: false } });
  defer(t, () => agent.close());
  const res = await request(`https://127.0.0.1:${port}/prpc/GetAppEnvEncryptPubKey?json`, { dispatcher: agent, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ app_id: appId }) });
  assert.equal(res.statusCode, 200);
  return (await res.body.json()) as PublicKeyResponse;
}

// GetAppKey as an app's CVM asks it: the temp CA from GetTempCaCert signs its RA-TLS client
// certificate, which carries its (simulated) attestation.
async function appKeyFrom(t: TestContext, port: number, attestation: SimAttestation): Promise<Record<string, string>> {
  const agent = new Agent({ connect: { rejectUnauthorized: false } });
  defer(t, () => agent.close());
  const temp = await request(`https://127.0.0.1:${port}/prpc/GetTempCaCert?json`, { dispatcher: agent, method: 'POST', body: '{}' });
  const { temp_ca_cert: certPem, temp_ca_key: keyPem } = (await temp.body.json()) as { temp_ca_cert: string; temp_ca_key: string };
  const client = signedLeaf({ certPem, keyPem }, 'RA-TLS TEMP Cert', { attestation });
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`https://127.0.0.1:${port}/prpc/GetAppKey?json`, { method: 'POST', agent: false, rejectUnauthorized: false, key: client.keyPem, cert: client.certPem }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(text) as Record<string, string>) : reject(new Error(`GetAppKey: HTTP ${res.statusCode}: ${text}`))));
    });
    req.on('error', reject);
    req.end('{"api_version": 1, "vm_config": ""}');
  });
}

// A publishes its KMS on 127.0.0.2 besides loopback ([init] kms_host_address), standing for its
// LAN address (Linux routes all of 127/8 to lo), and B onboards from there.
test('two hosts: B refuses to start untrusted, is refused by A, then onboards; an app id gets the same key from both KMSes', async (t) => {
  const a = await startInitStage(t, { init: { kms_host_address: '127.0.0.2' } });
  const first = await a.init();
  const b = await startInitStage(t, { init: { kms_onboard_from: `https://127.0.0.2:${a.kmsPort}` } });

  // B's auth-config.json lists no KMS it would accept keys from: refused before any deploy.
  const untrusted = await initFailure(b.init());
  assert.equal(untrusted.code, 'INIT_KMS_ONBOARD_UNTRUSTED');
  assert.match(untrusted.message, /Nothing was deployed\. On the host of https:\/\/127\.0\.0\.2:\d+ run `dstack-supervisor kms measurement`/);
  assert.deepEqual(b.mutations(), []);
  assert.equal(b.model.callsOf('StartUnit').length, 0);

  // B trusts A's KMS (A's measurement, read through A's VMM); A does not allow B's yet.
  const aMeasurement = await readCvmMeasurement(a.sim.vmmUrl, undefined, first.kms.vmId);
  await allowKms(b, aMeasurement);
  const denied = await initFailure(b.init());
  assert.equal(denied.code, 'INIT_KMS_ONBOARD_DENIED');
  const [bKms] = b.sim.state.list().filter((vm) => vm.name === 'dstack-kms');
  assert.ok(bKms !== undefined);
  const bMeasurement = await readCvmMeasurement(b.sim.vmmUrl, undefined, bKms.id);
  assert.notEqual(bMeasurement.mrAggregated, aMeasurement.mrAggregated);
  assert.ok(denied.message.includes(`\`dstack-supervisor kms allow ${bMeasurement.mrAggregated} --os-image ${bMeasurement.osImageHash}\``), denied.message);
  assert.match(denied.message, new RegExp(`KMS CVM ${bKms.id} waits in onboarding mode with no keys`));
  // Half-way is visible as such: the journal has no KMS, its port speaks no KMS RPC.
  const journal = JSON.parse(await readFile(join(b.config.state_dir, 'init.json'), 'utf8')) as { steps: Record<string, unknown> };
  assert.equal(journal.steps['kms'], undefined);
  await assert.rejects(envKeyFrom(t, b.kmsPort, 'ab'.repeat(20)));

  // The step on A; B's next init resumes the same CVM and completes.
  await allowKms(a, bMeasurement);
  const onboarded = await b.init();
  assert.equal(onboarded.kms.vmId, bKms.id);
  assert.deepEqual(b.mutations(), ['CreateVm']);
  assert.equal(onboarded.kms.k256Pubkey, first.kms.k256Pubkey);
  const recorded = JSON.parse(await readFile(join(b.config.state_dir, 'init.json'), 'utf8')) as { steps: { kms: { detail: Record<string, unknown> } } };
  assert.equal(recorded.steps.kms.detail['onboarded_from'], `https://127.0.0.2:${a.kmsPort}`);
  assert.equal(recorded.steps.kms.detail['mr_aggregated'], bMeasurement.mrAggregated);

  // The same app id: the same env key from either KMS, signed by the one root key both hold.
  const appId = 'c0ffee00'.repeat(5);
  const [fromA, fromB] = [await envKeyFrom(t, a.kmsPort, appId), await envKeyFrom(t, b.kmsPort, appId)];
  const trust = { kmsPublicKeyHex: first.kms.k256Pubkey, now: () => Date.now() };
  assert.equal(verifyEnvPubkey({ app: 'shop', appId, reply: fromB }, trust), verifyEnvPubkey({ app: 'shop', appId, reply: fromA }, trust));
  assert.equal(fromA.public_key, fromB.public_key);

  // What the app's CVM gets (GetAppKey over RA-TLS), once its id and hash are registered on both.
  const pin = JSON.parse(await readFile(a.config.auth.config_path, 'utf8')) as { osImages: string[] };
  const app: SimAttestation = { mrAggregated: 'a1'.repeat(32), osImageHash: pin.osImages[0] ?? '', appId, composeHash: 'c0'.repeat(32), instanceId: '1e'.repeat(20), deviceId: 'de'.repeat(32), tcbStatus: 'UpToDate', advisoryIds: [] };
  for (const host of [a, b]) {
    const allowlist = openAllowlist(host.config.auth.config_path);
    await allowlist.addHash(appId, app.composeHash);
    await allowlist.close();
  }
  const [keysA, keysB] = [await appKeyFrom(t, a.kmsPort, app), await appKeyFrom(t, b.kmsPort, app)];
  for (const key of ['env_crypt_key', 'k256_key', 'k256_signature', 'disk_crypt_key'] as const) assert.equal(keysB[key], keysA[key], key);
  // The env key the CVM gets is the private half of the one the supervisor encrypts env vars to.
  const envPrivate = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), Buffer.from(keysA['env_crypt_key'] ?? '', 'hex')]), format: 'der', type: 'pkcs8' });
  assert.equal(x25519PublicKeyHex(createPublicKey(envPrivate)), fromA.public_key);

  // Onboarded is done: a re-run needs nothing from A and changes nothing.
  await a.sim.stop();
  await b.init();
  assert.deepEqual(b.mutations(), ['CreateVm']);
});

test('[init] kms_onboard_from is an https:// URL with a host, or empty', () => {
  for (const good of ['', 'https://203.0.113.10:9201', 'https://kms-a.example.net:9201/prpc']) assert.equal(InitSectionSchema.safeParse({ kms_onboard_from: good }).success, true, good);
  for (const bad of ['http://203.0.113.10:9201', '203.0.113.10:9201', 'https://']) {
    const parsed = InitSectionSchema.safeParse({ kms_onboard_from: bad });
    assert.equal(parsed.success, false, bad);
    assert.match(parsed.error?.issues[0]?.message ?? '', /must be the https:\/\/ URL of the source KMS/);
  }
});

test('onboarding from a host whose KMS does not answer: refused before anything is changed', async (t) => {
  const b = await startInitStage(t, { init: { kms_onboard_from: `https://127.0.0.1:${await freePort()}` } });
  const err = await initFailure(b.init());
  assert.equal(err.code, 'INIT_KMS_SOURCE_UNREACHABLE');
  assert.match(err.message, /cannot be reached: .*ECONNREFUSED.*Nothing was deployed\. Check that the source host publishes its KMS beyond loopback \(its supervisor\.toml \[init\] kms_host_address/s);
  assert.deepEqual(b.mutations(), []);
  assert.equal(existsSync(join(b.config.init.config_dir, 'kms.toml')), false, 'nothing rendered');
});

// Until the KMS on `port` serves its Onboard service (plain HTTP /health), or 5 s.
async function waitOnboardService(port: number): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const up = await request(`http://127.0.0.1:${port}/health`).then(async (res) => (await res.body.text()) === 'OK', () => false);
    if (up) return;
    if (Date.now() > deadline) throw new Error(`no Onboard service on port ${port} after 5 s`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

test('onboarding from a KMS that has not bootstrapped (it waits for onboarding itself): refused before anything is changed', async (t) => {
  const a = await startInitStage(t);
  // A KMS CVM without keys, waiting in onboarding mode: what A's own replica init leaves.
  const kmsToml = '[core.onboard]\nenabled = true\nauto_bootstrap_domain = ""\n';
  const image = (await a.vmm.listImages())[0]?.name;
  assert.ok(image !== undefined);
  await a.vmm.createVm(kmsVmConfig({ image, composeFile: kmsAppCompose(kmsToml, 'kms.toml', 'tdx'), hostPort: a.kmsPort, hostAddress: '127.0.0.1' }));
  await waitOnboardService(a.kmsPort);
  const b = await startInitStage(t, { init: { kms_onboard_from: `https://127.0.0.1:${a.kmsPort}` } });
  const err = await initFailure(b.init());
  assert.equal(err.code, 'INIT_KMS_SOURCE_NOT_READY');
  assert.match(err.message, /serves the Onboard service \(plain HTTP\) instead of its RPC: it has not bootstrapped its keys yet\. Nothing was deployed/);
  assert.deepEqual(b.mutations(), []);
});

test('a replica whose host trusts another KMS than the source refuses it after deploy: the keyless CVM is named and resumed once trusted', async (t) => {
  const a = await startInitStage(t);
  const first = await a.init();
  const b = await startInitStage(t, { init: { kms_onboard_from: `https://127.0.0.1:${a.kmsPort}` } });
  await initFailure(b.init());
  await allowKms(b, { mrAggregated: 'ab'.repeat(32), osImageHash: '' });
  const err = await initFailure(b.init());
  assert.equal(err.code, 'INIT_KMS_ONBOARD_UNTRUSTED');
  const [bKms] = b.sim.state.list().filter((vm) => vm.name === 'dstack-kms');
  assert.ok(bKms !== undefined);
  assert.match(err.message, /this host's KMS refused the source KMS \(Failed to onboard: Source KMS is not allowed for onboarding: boot denied: aggregated MR not allowed\)/);
  assert.match(err.message, new RegExp(`KMS CVM ${bKms.id} waits in onboarding mode with no keys`));

  await allowKms(b, await readCvmMeasurement(a.sim.vmmUrl, undefined, first.kms.vmId));
  await allowKms(a, await readCvmMeasurement(b.sim.vmmUrl, undefined, bKms.id));
  assert.equal((await b.init()).kms.k256Pubkey, first.kms.k256Pubkey);
  assert.deepEqual(b.mutations(), ['CreateVm']);
});
