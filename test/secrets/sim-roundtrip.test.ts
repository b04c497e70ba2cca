// The secrets pieces against the simulated host over its real socket: fetch the app key with
// GetAppEnvEncryptPubKey, verify it, encrypt NAME.env, and open it as the guest would.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encryptEnv } from '../../src/secrets/encrypt.ts';
import { readEnvFile } from '../../src/secrets/env-file.ts';
import { verifyEnvPubkey, type PubkeyTrust } from '../../src/secrets/pubkey.ts';
import { startSimHost, type SimHost } from '../../src/sim/host.ts';
import { createVmmClient, type VmmClient } from '../../src/vmm/client.ts';
import { defer } from '../helpers/cleanup.ts';

const APP_ID = '5a0b'.repeat(10);

async function start(t: TestContext, mode: 'protobuf' | 'json' = 'protobuf'): Promise<{ dir: string; host: SimHost; client: VmmClient; trust: PubkeyTrust }> {
  const dir = await mkdtemp(join(tmpdir(), 'secrets-sim-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  const host = await startSimHost({ dir, kmsUrl: 'https://10.0.2.2:9201' });
  defer(t, () => host.stop());
  const client = createVmmClient({ url: host.vmmUrl, mode });
  defer(t, () => client.close());
  return { dir, host, client, trust: { kmsPublicKeyHex: host.envKeys.kmsPublicKeyHex, now: () => Date.now() } };
}

for (const mode of ['protobuf', 'json'] as const) {
  test(`round trip over the ${mode} wire: the simulated guest reads exactly what shop.env held`, async (t) => {
    const { dir, host, client, trust } = await start(t, mode);
    await writeFile(join(dir, 'shop.env'), 'DB_PASSWORD="p@ss=word #1"\nEMPTY=\nUNICODE=密码 🔑\nPEM="a\\nb"\n', { mode: 0o600 });
    const env = await readEnvFile(join(dir, 'shop.yaml'), { owner: process.getuid?.() ?? 0 });
    assert.ok(env);
    const reply = await client.getAppEnvEncryptPubKey(`0x${APP_ID}`);
    const publicKey = verifyEnvPubkey({ app: 'shop', appId: APP_ID, reply }, trust);
    const encrypted = encryptEnv(env.values, publicKey);
    assert.deepEqual(host.envKeys.decrypt(APP_ID, encrypted), [
      { key: 'DB_PASSWORD', value: 'p@ss=word #1' },
      { key: 'EMPTY', value: '' },
      { key: 'PEM', value: 'a\nb' },
      { key: 'UNICODE', value: '密码 🔑' },
    ]);
  });
}

test('the simulated host forges or backdates its replies on request; each is refused', async (t) => {
  const { host, client, trust } = await start(t);
  host.envKeys.setFault('forge');
  const forged = await client.getAppEnvEncryptPubKey(APP_ID);
  assert.throws(() => verifyEnvPubkey({ app: 'shop', appId: APP_ID, reply: forged }, trust), { code: 'ENV_PUBKEY_FORGED' });
  host.envKeys.setFault('stale');
  const stale = await client.getAppEnvEncryptPubKey(APP_ID);
  assert.throws(() => verifyEnvPubkey({ app: 'shop', appId: APP_ID, reply: stale }, trust), { code: 'ENV_PUBKEY_STALE' });
  host.envKeys.setFault('none');
  const good = await client.getAppEnvEncryptPubKey(APP_ID);
  assert.equal(verifyEnvPubkey({ app: 'shop', appId: APP_ID, reply: good }, trust), host.envKeys.keyPairOf(APP_ID).publicKeyHex);
});
