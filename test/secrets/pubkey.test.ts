import { test } from 'node:test';
import assert from 'node:assert/strict';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { verifyEnvPubkey, type PubkeyTrust } from '../../src/secrets/pubkey.ts';
import { createEnvKeys } from '../../src/sim/env-keys.ts';
import { createKmsKey } from '../../src/sim/kms-keys.ts';
import type { PublicKeyResponse } from '../../src/vmm/messages.ts';

const APP_ID = 'c0ffee00'.repeat(5);
const NOW_MS = 1_760_000_000_000;

function setup(options: { signedAtMs?: number; maxAgeSeconds?: number } = {}) {
  const keys = createEnvKeys();
  const reply = keys.publicKeyResponse(APP_ID, options.signedAtMs ?? NOW_MS);
  const trust: PubkeyTrust = { kmsPublicKeyHex: keys.kmsPublicKeyHex, now: () => NOW_MS, maxAgeSeconds: options.maxAgeSeconds };
  return { keys, reply, trust };
}

function verify(reply: PublicKeyResponse, trust: PubkeyTrust, appId = APP_ID): string {
  return verifyEnvPubkey({ app: 'shop', appId, reply }, trust);
}

test('a reply signed by the KMS key now verifies and yields the app public key', () => {
  const { keys, reply, trust } = setup();
  assert.equal(verify(reply, trust), keys.keyPairOf(APP_ID).publicKeyHex);
});

test('the app id may carry 0x and upper case; the KMS key may be uncompressed or 0x-prefixed', () => {
  const { keys, reply, trust } = setup();
  const uncompressed = secp256k1.Point.fromHex(keys.kmsPublicKeyHex).toHex(false);
  assert.equal(verify(reply, { ...trust, kmsPublicKeyHex: `0x${uncompressed}` }, `0x${APP_ID.toUpperCase()}`), reply.public_key);
});

test('a reply signed by another key (simulated forge fault) is ENV_PUBKEY_FORGED and names both keys', () => {
  const { keys, trust } = setup();
  keys.setFault('forge');
  const reply = keys.publicKeyResponse(APP_ID, NOW_MS);
  assert.throws(() => verify(reply, trust), (err: unknown) => {
    assert.ok(err instanceof Error && 'code' in err);
    assert.equal(err.code, 'ENV_PUBKEY_FORGED');
    assert.match(err.message, /^app "shop": /);
    assert.ok(err.message.includes(keys.kmsPublicKeyHex), err.message);
    return true;
  });
});

test('trusting a different KMS key refuses a genuine reply of this KMS', () => {
  const { reply, trust } = setup();
  assert.throws(() => verify(reply, { ...trust, kmsPublicKeyHex: createKmsKey().publicKeyHex }), { code: 'ENV_PUBKEY_FORGED' });
});

test('a swapped public key, a moved timestamp or another app id break the signature', () => {
  const { keys, reply, trust } = setup();
  const otherApp = 'beef'.repeat(10);
  const swapped = { ...reply, public_key: keys.keyPairOf(otherApp).publicKeyHex };
  assert.throws(() => verify(swapped, trust), { code: 'ENV_PUBKEY_FORGED' });
  assert.throws(() => verify({ ...reply, timestamp: reply.timestamp - 1 }, trust), { code: 'ENV_PUBKEY_FORGED' });
  assert.throws(() => verify(reply, trust, otherApp), { code: 'ENV_PUBKEY_FORGED' });
});

test('a malformed signature_v1 is ENV_PUBKEY_FORGED', () => {
  const { reply, trust } = setup();
  const sig = reply.signature_v1;
  for (const bad of [sig.slice(0, 128), `${sig}00`, `${sig.slice(0, 128)}04`, '00'.repeat(65)]) {
    assert.throws(() => verify({ ...reply, signature_v1: bad }, trust), { code: 'ENV_PUBKEY_FORGED' });
  }
  assert.throws(() => verify({ ...reply, timestamp: 2 ** 60 }, trust), { code: 'ENV_PUBKEY_FORGED' });
});

test('a reply with only the legacy signature is ENV_PUBKEY_UNSIGNED', () => {
  const { reply, trust } = setup();
  assert.throws(() => verify({ ...reply, signature_v1: '' }, trust), { code: 'ENV_PUBKEY_UNSIGNED' });
  assert.throws(() => verify({ ...reply, signature: '', signature_v1: '' }, trust), { code: 'ENV_PUBKEY_UNSIGNED' });
});

test('a validly signed but old reply (simulated stale fault) is ENV_PUBKEY_STALE', () => {
  const { keys, trust } = setup();
  keys.setFault('stale');
  assert.throws(() => verify(keys.publicKeyResponse(APP_ID, NOW_MS), trust), { code: 'ENV_PUBKEY_STALE' });
  keys.setFault('none');
  assert.equal(verify(keys.publicKeyResponse(APP_ID, NOW_MS), trust), keys.keyPairOf(APP_ID).publicKeyHex);
});

test('max age: exactly at the limit passes, one second over is stale', () => {
  const atLimit = setup({ signedAtMs: NOW_MS - 120_000, maxAgeSeconds: 120 });
  assert.equal(verify(atLimit.reply, atLimit.trust), atLimit.reply.public_key);
  const over = setup({ signedAtMs: NOW_MS - 121_000, maxAgeSeconds: 120 });
  assert.throws(() => verify(over.reply, over.trust), { code: 'ENV_PUBKEY_STALE' });
});

test('the default max age is 10 minutes', () => {
  const fresh = setup({ signedAtMs: NOW_MS - 600_000 });
  assert.equal(verify(fresh.reply, fresh.trust), fresh.reply.public_key);
  const old = setup({ signedAtMs: NOW_MS - 601_000 });
  assert.throws(() => verify(old.reply, old.trust), { code: 'ENV_PUBKEY_STALE' });
});

test('a timestamp up to 60 s ahead passes; further ahead is ENV_PUBKEY_FUTURE', () => {
  const skewed = setup({ signedAtMs: NOW_MS + 60_000 });
  assert.equal(verify(skewed.reply, skewed.trust), skewed.reply.public_key);
  const ahead = setup({ signedAtMs: NOW_MS + 61_000 });
  assert.throws(() => verify(ahead.reply, ahead.trust), { code: 'ENV_PUBKEY_FUTURE' });
});

test('a misconfigured KMS key is ENV_KMS_KEY; a bad app id or public key is ENV_PUBKEY_INVALID', () => {
  const { reply, trust } = setup();
  assert.throws(() => verify(reply, { ...trust, kmsPublicKeyHex: '02' + '00'.repeat(32) }), { code: 'ENV_KMS_KEY' });
  assert.throws(() => verify(reply, trust, 'abcd'), { code: 'ENV_PUBKEY_INVALID' });
  assert.throws(() => verify({ ...reply, public_key: 'abcd' }, trust), { code: 'ENV_PUBKEY_INVALID' });
});

// Recover the signer of a legacy `signature` the way vmm-cli.py `verify_signature` does.
function legacySigner(publicKeyHex: string, signatureHex: string, appIdHex: string): string {
  const digest = keccak_256(Buffer.concat([Buffer.from('dstack-env-encrypt-pubkey:'), Buffer.from(appIdHex, 'hex'), Buffer.from(publicKeyHex, 'hex')]));
  const sig = Buffer.from(signatureHex, 'hex');
  return secp256k1.Signature.fromBytes(sig.subarray(0, 64), 'compact').addRecoveryBit(sig[64] ?? 0).recoverPublicKey(digest).toHex(true);
}

test("upstream's legacy vector (vmm-cli.py verify_signature doctest) pins the r‖s‖v layout and message framing", () => {
  const signer = legacySigner(
    'e33a1832c6562067ff8f844a61e51ad051f1180b66ec2551fb0251735f3ee90a',
    '8542c49081fbf4e03f62034f13fbf70630bdf256a53032e38465a27c36fd6bed7a5e7111652004aef37f7fd92fbfc1285212c4ae6a6154203a48f5e16cad2cef00',
    '00'.repeat(20),
  );
  assert.equal(signer, '0217610d74cbd39b6143842c6d8bc310d79da1d82cc9d17f8876376221eda0c38f');
});

test("the simulated KMS's legacy signature recovers to its key the same way", () => {
  const { keys, reply } = setup();
  assert.equal(legacySigner(reply.public_key, reply.signature, APP_ID), keys.kmsPublicKeyHex);
});

test('the simulated KMS refuses app ids that are not 20 bytes', () => {
  const { keys } = setup();
  assert.throws(() => keys.publicKeyResponse('abcd', NOW_MS), { code: 'SIM_VMM_REJECTED', message: 'app_id must be 20 bytes' });
});
