// Verify a GetAppEnvEncryptPubKey reply before encrypting anything to it. The facts, from
// Dstack-TEE/dstack:
// - kms/src/main_service.rs `get_app_env_encrypt_pub_key` signs the X25519 public key twice with
//   the KMS's k256 (secp256k1) root key: `signature` (legacy) and `signature_v1`, the latter
//   with `timestamp` = the KMS's clock in Unix seconds. The VMM passes all four fields through
//   unchanged (vmm/src/main_service.rs).
// - kms/src/crypto.rs `sign_message_with_timestamp`: the signed digest is
//   keccak256("dstack-env-encrypt-pubkey" ‖ ":" ‖ app_id (20 raw bytes) ‖ timestamp as 8 bytes
//   big-endian ‖ public_key (32 raw bytes)); the legacy one is the same without the timestamp.
//   The signature is 65 bytes: r (32) ‖ s (32) ‖ recovery id (k256 `RecoveryId::to_byte`, 0–3).
// - vmm/src/vmm-cli.py `verify_signature_v1` and sdk/js verify-env-encrypt-public-key.ts recover
//   the signer's public key from that digest and compare it with trusted KMS keys (vmm-cli's
//   whitelist holds 33-byte compressed keys); the JS SDK refuses timestamps older than its max
//   age (300 s) or more than 60 s ahead. The trusted key is GetMeta's `k256_pubkey`
//   (`verifying_key().to_sec1_bytes()`, compressed SEC1) from kms/src/main_service.rs.
// Unlike vmm-cli.py we never fall back to the legacy signature: without a timestamp a replayed
// old reply would pass, so a reply without `signature_v1` is refused.
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import type { PublicKeyResponse } from '../vmm/messages.ts';
import { SecretsError, type SecretsErrorCode } from './errors.ts';

// A reply older than this is refused (the JS SDK uses 300 s; the VMM proxies the KMS call, so a
// fresh reply is seconds old).
export const DEFAULT_PUBKEY_MAX_AGE_SECONDS = 600;

// A reply this far ahead of our clock is still accepted, as in the JS SDK.
export const DEFAULT_PUBKEY_MAX_SKEW_SECONDS = 60;

const SIGNED_PREFIX = Buffer.from('dstack-env-encrypt-pubkey:', 'utf8');
const APP_ID_HEX = /^[0-9a-f]{40}$/;
const PUBLIC_KEY_HEX = /^[0-9a-f]{64}$/;
const SIGNATURE_BYTES = 65;

// What a reply is checked against. `kmsPublicKeyHex`: the KMS's k256 public key as learned at
// init from its GetMeta `k256_pubkey` (SEC1 hex, compressed or not, optional 0x). `now` is the
// injected clock in ms.
export type PubkeyTrust = {
  kmsPublicKeyHex: string;
  now: () => number;
  maxAgeSeconds?: number;
  maxSkewSeconds?: number;
};

// The reply to check and what it was asked for: `app` names the app in messages, `appId` is the
// hex app id sent to GetAppEnvEncryptPubKey.
export type PubkeyReply = { app: string; appId: string; reply: PublicKeyResponse };

type Secp256k1Point = ReturnType<typeof secp256k1.Point.fromHex>;

function refuse(code: SecretsErrorCode, app: string, problem: string): SecretsError {
  return new SecretsError(code, `app "${app}": the env-encryption key from GetAppEnvEncryptPubKey ${problem}`);
}

function parseKmsKey(hex: string): Secp256k1Point {
  try {
    return secp256k1.Point.fromHex(hex.replace(/^0x/i, '').toLowerCase());
  } catch {
    throw new SecretsError('ENV_KMS_KEY', `the configured KMS k256 public key is not a secp256k1 point in SEC1 hex; re-run init so it is read again from the KMS's GetMeta k256_pubkey`);
  }
}

// keccak256(prefix ‖ ":" ‖ app_id ‖ timestamp_be64 ‖ public_key), as kms/src/crypto.rs signs.
function signedDigest(appId: Buffer, timestamp: number, publicKey: Buffer): Uint8Array {
  const stamp = Buffer.alloc(8);
  stamp.writeBigUInt64BE(BigInt(timestamp));
  return keccak_256(Buffer.concat([SIGNED_PREFIX, appId, stamp, publicKey]));
}

// The key that made `signature` (r ‖ s ‖ recovery id) over `digest`, or null if none can have.
function recoverSigner(digest: Uint8Array, signature: Buffer): Secp256k1Point | null {
  const recovery = signature[SIGNATURE_BYTES - 1] ?? 0xff;
  if (signature.length !== SIGNATURE_BYTES || recovery > 3) return null;
  try {
    return secp256k1.Signature.fromBytes(signature.subarray(0, SIGNATURE_BYTES - 1), 'compact').addRecoveryBit(recovery).recoverPublicKey(digest);
  } catch {
    return null;
  }
}

function checkAge(app: string, timestamp: number, trust: PubkeyTrust): void {
  const maxAge = trust.maxAgeSeconds ?? DEFAULT_PUBKEY_MAX_AGE_SECONDS;
  const maxSkew = trust.maxSkewSeconds ?? DEFAULT_PUBKEY_MAX_SKEW_SECONDS;
  const age = Math.floor(trust.now() / 1000) - timestamp;
  if (age > maxAge) {
    throw refuse('ENV_PUBKEY_STALE', app, `was signed ${age} s ago, more than the ${maxAge} s allowed: it may be a replayed old reply; check that the KMS's clock is right, then retry`);
  }
  if (-age > maxSkew) {
    throw refuse('ENV_PUBKEY_FUTURE', app, `is signed ${-age} s in the future, more than the ${maxSkew} s of clock skew allowed; check this host's and the KMS's clocks (NTP), then retry`);
  }
}

// Check `signature_v1` of the reply: made by the trusted KMS key over this app id, this public
// key and a timestamp neither stale nor in the future. Returns the verified X25519 public key
// (lowercase hex) to pass to encryptEnv; throws SecretsError otherwise.
export function verifyEnvPubkey(input: PubkeyReply, trust: PubkeyTrust): string {
  const { app, reply } = input;
  const appId = input.appId.replace(/^0x/i, '').toLowerCase();
  if (!APP_ID_HEX.test(appId)) throw refuse('ENV_PUBKEY_INVALID', app, `was asked for app id "${input.appId}", which is not 20 bytes of hex`);
  const kmsKey = parseKmsKey(trust.kmsPublicKeyHex);
  if (!PUBLIC_KEY_HEX.test(reply.public_key)) throw refuse('ENV_PUBKEY_INVALID', app, `is not a 32-byte X25519 key; check that the VMM's kms_url points at a dstack KMS`);
  if (reply.signature_v1 === '') {
    throw refuse('ENV_PUBKEY_UNSIGNED', app, `has no signature_v1 (signed with a timestamp), so it cannot be told apart from a replayed one; upgrade the KMS to a release that sends signature_v1`);
  }
  if (!Number.isSafeInteger(reply.timestamp)) throw refuse('ENV_PUBKEY_FORGED', app, `carries an impossible timestamp ${reply.timestamp}; it did not come from the KMS`);
  const digest = signedDigest(Buffer.from(appId, 'hex'), reply.timestamp, Buffer.from(reply.public_key, 'hex'));
  const signer = recoverSigner(digest, Buffer.from(reply.signature_v1, 'hex'));
  if (signer === null) {
    throw refuse('ENV_PUBKEY_FORGED', app, `has a malformed signature_v1 (not 65 bytes r‖s‖v, or no key can have made it); it did not come from the KMS: check the VMM's kms_url`);
  }
  if (!signer.equals(kmsKey)) {
    throw refuse('ENV_PUBKEY_FORGED', app, `is signed by ${signer.toHex(true)}, not by the KMS key ${kmsKey.toHex(true)}; refusing to encrypt secrets to it: check that the VMM's kms_url points at the KMS that init set up`);
  }
  checkAge(app, reply.timestamp, trust);
  return reply.public_key;
}
