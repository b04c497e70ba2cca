// GetAppEnvEncryptPubKey as the simulated KMS answers it, both to the simulated VMM (upstream's
// proxies the call to its top-level `kms_url`, docs/dstack.md §2, and passes the reply through; the
// VMM's own "KMS is not configured" check is in vmm-dispatch.ts) and on the simulated KMS CVM's
// port (kms-server.ts, where vmm-cli.py `--kms-url` asks). An app's X25519 key pair derives from
// the KMS's root keys (kms-root.ts), so a KMS that onboarded from another hands out the same one,
// and the root k256 key (kms-keys.ts) signs each reply like dstack-kms's
// `get_app_env_encrypt_pub_key` (kms/src/main_service.rs): the legacy `signature` over
// app_id ‖ public_key, and `signature_v1` over app_id ‖ timestamp (8 bytes BE) ‖ public_key with
// the current Unix time in seconds.
// Differences: the derivation (see kms-root.ts); app ids must be 20 bytes, as in current
// dstack-kms (`ensure_app_id_len`).
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import type { EnvEntry } from '../secrets/dotenv.ts';
import { decryptEnv, x25519PublicKeyHex } from '../secrets/encrypt.ts';
import type { PublicKeyResponse } from '../vmm/messages.ts';
import { createKmsKey } from './kms-keys.ts';
import { createKmsRoot, deriveAppKeys, type AppKeys, type KmsRoot, type KmsRootKeys } from './kms-root.ts';
import { VmmRejection } from './vm-rules.ts';

const SIGNED_PREFIX = 'dstack-env-encrypt-pubkey';

// How far back a 'stale' reply is dated: far beyond any sane max age.
const STALE_BY_SECONDS = 24 * 3600;

// One app's env-encryption key pair.
export type EnvKeyPair = { publicKeyHex: string; privateKey: KeyObject };

// Replies as the KMS sends them ('none'); signed by another secp256k1 key than the KMS's
// ('forge'); or validly signed but dated a day back ('stale'). A fault lasts until changed.
export type EnvKeyFault = 'none' | 'forge' | 'stale';

// The env keys of every app id asked for so far, and the KMS key that signs them.
export type EnvKeys = {
  publicKeyResponse: (appIdHex: string, nowMs: number) => PublicKeyResponse;
  keyPairOf: (appIdHex: string) => EnvKeyPair;
  // The KMS's k256 public key (GetMeta `k256_pubkey`), what the supervisor is configured to trust.
  readonly kmsPublicKeyHex: string;
  // The root keys, to hand over (GetKmsKey) or to replace with handed-over ones (Onboard).
  exportRoot: () => KmsRootKeys;
  adoptRoot: (keys: KmsRootKeys) => void;
  // What GetAppKey hands the CVM of app `appIdHex`, instance `instanceIdHex` (kms-root.ts).
  appKeys: (appIdHex: string, instanceIdHex: string) => AppKeys;
  // Open an app's encrypted_env as its guest would at boot; throws SecretsError ENV_DECRYPT.
  decrypt: (appIdHex: string, encryptedEnvHex: string) => EnvEntry[];
  setFault: (fault: EnvKeyFault) => void;
};

function timestampBytes(seconds: number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64BE(BigInt(seconds));
  return bytes;
}

// An X25519 private key from its 32 raw bytes (PKCS#8 is the form node:crypto takes them in).
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

// The simulated KMS's env keys, derived from `root` (default: fresh random root keys).
export function createEnvKeys(root: KmsRoot = createKmsRoot()): EnvKeys {
  const pairs = new Map<string, EnvKeyPair>();
  const impostor = createKmsKey();
  let fault: EnvKeyFault = 'none';
  const keyPairOf = (appIdHex: string): EnvKeyPair => {
    const appId = appIdHex.toLowerCase();
    const known = pairs.get(appId);
    if (known) return known;
    // The same secret GetAppKey hands the app's CVM as its env_crypt_key (kms-root.ts).
    const secret = root.derive(Buffer.from(appId, 'hex'), 'env-encrypt-key');
    const privateKey = createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, secret]), format: 'der', type: 'pkcs8' });
    const pair = { publicKeyHex: x25519PublicKeyHex(createPublicKey(privateKey)), privateKey };
    pairs.set(appId, pair);
    return pair;
  };
  return {
    keyPairOf,
    get kmsPublicKeyHex() {
      return root.signer().publicKeyHex;
    },
    exportRoot: () => root.export(),
    adoptRoot: (keys) => {
      root.adopt(keys);
      pairs.clear();
    },
    appKeys: (appIdHex, instanceIdHex) => deriveAppKeys(root, Buffer.from(appIdHex, 'hex'), Buffer.from(instanceIdHex, 'hex')),
    decrypt: (appIdHex, encryptedEnvHex) => decryptEnv(encryptedEnvHex, keyPairOf(appIdHex).privateKey),
    setFault: (next) => {
      fault = next;
    },
    publicKeyResponse: (appIdHex, nowMs) => {
      const appId = Buffer.from(appIdHex, 'hex');
      if (appId.length !== 20 || appId.toString('hex') !== appIdHex.toLowerCase()) throw new VmmRejection('app_id must be 20 bytes');
      const publicKey = Buffer.from(keyPairOf(appIdHex).publicKeyHex, 'hex');
      const timestamp = Math.floor(nowMs / 1000) - (fault === 'stale' ? STALE_BY_SECONDS : 0);
      const signer = fault === 'forge' ? impostor : root.signer();
      return {
        public_key: publicKey.toString('hex'),
        signature: signer.signMessage(SIGNED_PREFIX, appId, publicKey),
        timestamp,
        signature_v1: signer.signMessage(SIGNED_PREFIX, appId, Buffer.concat([timestampBytes(timestamp), publicKey])),
      };
    },
  };
}
