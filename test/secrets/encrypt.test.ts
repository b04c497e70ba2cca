import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, webcrypto } from 'node:crypto';
import type { EnvEntry } from '../../src/secrets/dotenv.ts';
import { decryptEnv, encryptEnv, x25519PublicKeyHex } from '../../src/secrets/encrypt.ts';

const ENV: EnvEntry[] = [
  { key: 'DB_PASSWORD', value: 'hunter2' },
  { key: 'EMPTY', value: '' },
  { key: 'EQUALS', value: 'a=b==' },
  { key: 'MULTILINE', value: '-----BEGIN-----\nabc\n-----END-----' },
  { key: 'QUOTES', value: `it's "quoted" \\ back` },
  { key: 'UNICODE', value: 'pässwörd 密码 🔑 \u0000 \u2028' },
];

function appKey(): { publicKeyHex: string; privateKey: ReturnType<typeof generateKeyPairSync>['privateKey'] } {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  return { publicKeyHex: x25519PublicKeyHex(publicKey), privateKey };
}

test('encryptEnv → decryptEnv gives back exactly the values, in order', () => {
  const key = appKey();
  assert.deepEqual(decryptEnv(encryptEnv(ENV, key.publicKeyHex), key.privateKey), ENV);
});

test('an empty env round-trips too', () => {
  const key = appKey();
  assert.deepEqual(decryptEnv(encryptEnv([], key.publicKeyHex), key.privateKey), []);
});

test('the bytes follow encrypted-env-spec.md: ephemeral key ‖ 12-byte nonce ‖ AES-256-GCM of the JSON, opened independently with WebCrypto', async () => {
  const key = appKey();
  const data = Buffer.from(encryptEnv(ENV, key.publicKeyHex), 'hex');
  const plaintext = Buffer.from(JSON.stringify({ env: ENV }), 'utf8');
  assert.equal(data.length, 32 + 12 + plaintext.length + 16);
  const { subtle } = webcrypto;
  const privateKey = await subtle.importKey('jwk', key.privateKey.export({ format: 'jwk' }), { name: 'X25519' }, false, ['deriveBits']);
  const ephemeral = await subtle.importKey('raw', data.subarray(0, 32), { name: 'X25519' }, false, []);
  const shared = await subtle.deriveBits({ name: 'X25519', public: ephemeral }, privateKey, 256);
  const aes = await subtle.importKey('raw', shared, 'AES-GCM', false, ['decrypt']);
  const opened = await subtle.decrypt({ name: 'AES-GCM', iv: data.subarray(32, 44) }, aes, data.subarray(44));
  assert.deepEqual(JSON.parse(Buffer.from(opened).toString('utf8')), { env: ENV });
});

test('every encryption uses a fresh ephemeral key and nonce', () => {
  const key = appKey();
  const a = encryptEnv(ENV, key.publicKeyHex);
  const b = encryptEnv(ENV, key.publicKeyHex);
  assert.notEqual(a.slice(0, 64), b.slice(0, 64));
  assert.notEqual(a.slice(64, 88), b.slice(64, 88));
});

test('a 0x prefix and upper-case hex on the public key are accepted, as in vmm-cli.py', () => {
  const key = appKey();
  assert.deepEqual(decryptEnv(encryptEnv(ENV, `0x${key.publicKeyHex.toUpperCase()}`), key.privateKey), ENV);
});

test('a public key that is not 32 bytes of hex is ENV_PUBKEY_INVALID', () => {
  for (const bad of ['', 'abcd', 'zz'.repeat(32), '00'.repeat(33)]) {
    assert.throws(() => encryptEnv(ENV, bad), { code: 'ENV_PUBKEY_INVALID' });
  }
});

test('a low-order public key is ENV_PUBKEY_INVALID', () => {
  assert.throws(() => encryptEnv(ENV, '00'.repeat(32)), { code: 'ENV_PUBKEY_INVALID' });
});

test('the wrong key, a flipped bit, a cut blob or non-hex are ENV_DECRYPT, without the plaintext', () => {
  const key = appKey();
  const blob = encryptEnv(ENV, key.publicKeyHex);
  const flipped = `${blob.slice(0, 100)}${blob[100] === '0' ? '1' : '0'}${blob.slice(101)}`;
  const cases = [
    () => decryptEnv(blob, appKey().privateKey),
    () => decryptEnv(flipped, key.privateKey),
    () => decryptEnv(blob.slice(0, 80), key.privateKey),
    () => decryptEnv(blob.toUpperCase(), key.privateKey),
  ];
  for (const run of cases) {
    assert.throws(run, (err: unknown) => {
      assert.ok(err instanceof Error && 'code' in err && err.code === 'ENV_DECRYPT');
      assert.ok(!err.message.includes('hunter2'));
      return true;
    });
  }
});
