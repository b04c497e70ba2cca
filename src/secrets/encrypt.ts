// encrypted_env exactly as upstream clients build it (dstack/vmm/src/vmm-cli.py `encrypt_env`,
// docs/encrypted-env-spec.md "Encrypt/Decrypt Protocol"):
// - plaintext: the JSON `{"env":[{"key":…,"value":…}]}` as UTF-8. vmm-cli.py writes it with
//   Python's json.dumps (", " separators, \u escapes); the guest parses JSON, so the compact
//   JSON.stringify form opens the same way.
// - an ephemeral X25519 key pair; the X25519 shared secret with the app's public key is the
//   AES-256-GCM key as is (no KDF), a random 12-byte nonce, no AAD, the 16-byte tag appended.
// - bytes: ephemeral public key (32) ‖ nonce (12) ‖ ciphertext ‖ tag (16), sent as lowercase hex.
import { createCipheriv, createDecipheriv, createPublicKey, diffieHellman, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import * as z from 'zod';
import { EnvEntrySchema, type EnvEntry } from './dotenv.ts';
import { SecretsError } from './errors.ts';

const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

const EnvPayloadSchema = z.object({ env: z.array(EnvEntrySchema) });

// The raw 32 bytes of an X25519 public key, as hex: the form GetAppEnvEncryptPubKey returns.
export function x25519PublicKeyHex(publicKey: KeyObject): string {
  return Buffer.from(publicKey.export({ format: 'jwk' }).x ?? '', 'base64url').toString('hex');
}

// node:crypto takes raw X25519 keys only as JWK.
function x25519PublicKey(raw: Buffer): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: raw.toString('base64url') }, format: 'jwk' });
}

// Upstream strips a leading 0x from the key before bytes.fromhex; so do we.
function parsePublicKey(hex: string): KeyObject {
  const digits = hex.replace(/^0x/i, '');
  if (!new RegExp(`^[0-9a-fA-F]{${KEY_BYTES * 2}}$`).test(digits)) {
    throw new SecretsError('ENV_PUBKEY_INVALID', `the env-encryption public key is not ${KEY_BYTES} bytes of hex; the KMS reply is malformed, check the VMM's kms_url`);
  }
  return x25519PublicKey(Buffer.from(digits, 'hex'));
}

// Encrypt `env` for the app whose (already verified) X25519 public key is `appPublicKeyHex`;
// returns the hex for CreateVm / UpdateVm `encrypted_env`. Every call uses a fresh ephemeral
// key and nonce, so equal inputs give different outputs.
export function encryptEnv(env: readonly EnvEntry[], appPublicKeyHex: string): string {
  const remote = parsePublicKey(appPublicKeyHex);
  const ephemeral = generateKeyPairSync('x25519');
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: remote });
  } catch {
    throw new SecretsError('ENV_PUBKEY_INVALID', 'the env-encryption public key is not a usable X25519 key (low-order point); the KMS reply is malformed, check the VMM\'s kms_url');
  }
  const nonce = randomBytes(NONCE_BYTES);
  const plaintext = Buffer.from(JSON.stringify({ env: env.map(({ key, value }) => ({ key, value })) }), 'utf8');
  try {
    const cipher = createCipheriv('aes-256-gcm', shared, nonce);
    const sealed = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    return Buffer.concat([Buffer.from(x25519PublicKeyHex(ephemeral.publicKey), 'hex'), nonce, sealed]).toString('hex');
  } finally {
    plaintext.fill(0);
    shared.fill(0);
  }
}

function decryptError(problem: string): SecretsError {
  return new SecretsError('ENV_DECRYPT', `encrypted_env ${problem}`);
}

// AES-256-GCM open of ephemeral key ‖ nonce ‖ ciphertext ‖ tag with the X25519 shared secret.
function openSealed(data: Buffer, privateKey: KeyObject): Buffer {
  let shared: Buffer | undefined;
  try {
    shared = diffieHellman({ privateKey, publicKey: x25519PublicKey(data.subarray(0, KEY_BYTES)) });
    const decipher = createDecipheriv('aes-256-gcm', shared, data.subarray(KEY_BYTES, KEY_BYTES + NONCE_BYTES));
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
    return Buffer.concat([decipher.update(data.subarray(KEY_BYTES + NONCE_BYTES, data.length - TAG_BYTES)), decipher.final()]);
  } catch {
    throw decryptError('does not open with this app key (wrong key or tampered bytes)');
  } finally {
    shared?.fill(0);
  }
}

// Open an encrypted_env blob with the app's X25519 private key, as the guest does at boot
// (docs/encrypted-env-spec.md "Decryption Flow"). The simulated host uses it.
export function decryptEnv(encryptedHex: string, privateKey: KeyObject): EnvEntry[] {
  if (!/^(?:[0-9a-f]{2})*$/.test(encryptedHex)) throw decryptError('is not lowercase hex');
  const data = Buffer.from(encryptedHex, 'hex');
  if (data.length < KEY_BYTES + NONCE_BYTES + TAG_BYTES) throw decryptError(`is ${data.length} bytes, too short to hold a key, a nonce and a tag`);
  const plaintext = openSealed(data, privateKey);
  // No cause is kept: JSON.parse and zod errors may quote the plaintext.
  let json: unknown;
  try {
    json = JSON.parse(plaintext.toString('utf8'));
  } catch {
    throw decryptError('opens to something that is not JSON');
  } finally {
    plaintext.fill(0);
  }
  const parsed = EnvPayloadSchema.safeParse(json);
  if (!parsed.success) throw decryptError('opens to JSON that is not {"env":[{"key","value"}]}');
  return parsed.data.env;
}
