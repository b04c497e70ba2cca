import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { Agent, request as undiciRequest } from 'undici';
import { createKmsProber } from '../../src/init/kms-probe.ts';
import { createVmmClient } from '../../src/vmm/client.ts';
import { createManualClock } from '../helpers/manual-clock.ts';
import { appCompose, freePort, startTestHost } from './fixtures.ts';
import { defer } from '../helpers/cleanup.ts';

const KMS_COMPOSE = JSON.stringify({ manifest_version: 2, name: 'dstack-kms', runner: 'docker-compose', docker_compose_file: '', local_key_provider_enabled: true });

// Probe until `want` holds for the outcome (ok or not); the failure names the last outcome.
async function probeUntil(probe: () => Promise<unknown>, want: 'up' | 'down', timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const up = await probe().then(() => true, (err: unknown) => ((last = String(err)), false));
    if ((want === 'up') === up) return;
    if (Date.now() > deadline) throw new Error(`KMS not ${want} after ${timeoutMs} ms (last: ${last})`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// A simulated host on a manual clock, a VMM client and a KMS prober, closed when the test ends.
async function kmsStage(t: TestContext, kmsBootstrapDelayMs: number) {
  const clock = createManualClock();
  const host = await startTestHost(t, { clock, kmsBootstrapDelayMs });
  const client = createVmmClient({ url: host.vmmUrl, mode: 'json' });
  const prober = createKmsProber();
  defer(t, async () => {
    await client.close();
    await prober.close();
  });
  return { clock, host, client, prober };
}

test('the simulated KMS speaks HTTPS only after boot done plus its bootstrap delay, with the host KMS key, and stops with its VM', async (t) => {
  const { clock, host, client, prober } = await kmsStage(t, 200);
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;
  const { id } = await client.createVm({ name: 'dstack-kms', image: 'dstack-0.5.11', compose_file: KMS_COMPOSE, ports: [{ protocol: 'tcp', host_address: '127.0.0.1', host_port: port, vm_port: 8000 }] });
  await clock.advance(20);
  assert.equal(host.state.get(id)?.boot_progress, 'done');
  await assert.rejects(prober.probe(url), 'answered at boot done, before its bootstrap');
  await clock.advance(150);
  await assert.rejects(prober.probe(url), 'answered before the bootstrap delay was over');
  await clock.advance(100);
  const meta = await prober.probe(url);
  assert.equal(meta.k256Pubkey, host.envKeys.kmsPublicKeyHex);
  assert.match(meta.caCert, /^-----BEGIN CERTIFICATE-----/);

  await client.stopVm(id);
  await probeUntil(() => prober.probe(url), 'down');
});

test('a stalled KMS never answers until the fault is lifted; other VMs on port 8000 get the plain app listener', async (t) => {
  const { clock, host, client, prober } = await kmsStage(t, 50);
  host.kms.setFault('stall');
  const [kmsPort, appPort] = [await freePort(), await freePort()];
  const kmsUrl = `https://127.0.0.1:${kmsPort}`;
  await client.createVm({ name: 'dstack-kms', image: 'dstack-0.5.11', compose_file: KMS_COMPOSE, ports: [{ protocol: 'tcp', host_address: '127.0.0.1', host_port: kmsPort, vm_port: 8000 }] });
  await client.createVm({ name: 'web', image: 'dstack-0.5.11', compose_file: appCompose('web'), ports: [{ protocol: 'tcp', host_address: '127.0.0.1', host_port: appPort, vm_port: 8000 }] });
  // Far past both boots and the bootstrap delay: a stalled KMS has nothing left to wait for.
  await clock.advance(10_000);
  assert.deepEqual(host.state.list().map((vm) => vm.boot_progress), ['done', 'done']);
  assert.equal(clock.pending(), 0);
  await assert.rejects(prober.probe(kmsUrl));
  const body = await new Promise<string>((resolve, reject) => {
    request(`http://127.0.0.1:${appPort}/`, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve(text));
    }).on('error', reject).end();
  });
  assert.match(body, /^app web /);

  host.kms.setFault('none');
  await clock.advance(50);
  assert.equal((await prober.probe(kmsUrl)).k256Pubkey, host.envKeys.kmsPublicKeyHex);
});

test('vmm-cli.py --kms-url asks the KMS for an app env key: POST /prpc/GetAppEnvEncryptPubKey?json, the same key the VMM hands out', async (t) => {
  const { clock, host, client, prober } = await kmsStage(t, 0);
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;
  await client.createVm({ name: 'dstack-kms', image: 'dstack-0.5.11', compose_file: KMS_COMPOSE, ports: [{ protocol: 'tcp', host_address: '127.0.0.1', host_port: port, vm_port: 8000 }] });
  await clock.advance(20);
  await probeUntil(() => prober.probe(url), 'up');
  const agent = new Agent({ connect: { rejectUnauthorized: false } });
  defer(t, () => agent.close());
  // VmmCLI.get_app_env_encrypt_pub_key with a kms_url: json.dumps({"app_id": app_id}).
  const ask = async (appId: string) => {
    const res = await undiciRequest(`${url}/prpc/GetAppEnvEncryptPubKey?json`, { dispatcher: agent, method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"app_id": "${appId}"}` });
    return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
  };
  const appId = 'c0ffee00'.repeat(5);
  const reply = await ask(appId);
  assert.equal(reply.status, 200);
  assert.equal(reply.body['public_key'], host.envKeys.keyPairOf(appId).publicKeyHex);
  assert.deepEqual(Object.keys(reply.body), ['public_key', 'signature', 'timestamp', 'signature_v1']);
  assert.deepEqual(await ask('abcd'), { status: 400, body: { error: 'app_id must be 20 bytes' } });
});
