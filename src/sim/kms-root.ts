// The simulated KMS's root keys, as a KMS CVM keeps them on its disk: the secp256k1 key that signs
// env keys (k256), the root CA key, and the temporary CA key. Every per-app key derives from them,
// which is why a KMS that onboards (takes them over from another, upstream `GetKmsKey`) hands out
// the same keys for an app id as the KMS it onboarded from.
// Where it differs: upstream derives an app's env key from the root CA key (kms/src/
// main_service.rs `derive_dh_secret`); here it derives from the k256 secret through HKDF, so the
// CA keys (RSA, see kms-certs.ts) are only made when a KMS first needs them.
import { hkdfSync } from 'node:crypto';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { newKeyPem } from './kms-certs.ts';
import { createKmsKey, type KmsKey } from './kms-keys.ts';

// The keys as GetKmsKey hands them over: k256 secret (hex), root CA key and temp CA key (PEM).
export type KmsRootKeys = { k256Hex: string; caKeyPem: string; tempCaKeyPem: string };

// One KMS's root keys.
export type KmsRoot = {
  signer: () => KmsKey;
  // 32 secret bytes for `purpose` of an app id, the same wherever these root keys are.
  derive: (appId: Buffer, purpose: string) => Buffer;
  // The keys to hand over (the CA keys made now if this root had none yet).
  export: () => KmsRootKeys;
  // Replace these keys with handed-over ones.
  adopt: (keys: KmsRootKeys) => void;
};

// What GetAppKey hands an app's CVM (upstream `get_app_key`): every key derives from the root keys
// and the app id (the disk key also from the instance id), so two KMSes holding the same root keys
// hand an app id the same keys. The app's k256 key comes with the root k256 key's signature over
// it (prefix "dstack-kms-issued", kms/src/crypto.rs `derive_k256_key`).
export type AppKeys = { envCryptKey: Buffer; diskCryptKey: Buffer; k256Key: Buffer; k256Signature: string };

// The keys of app `appId` (20 bytes) in its instance `instanceId`.
export function deriveAppKeys(root: KmsRoot, appId: Buffer, instanceId: Buffer): AppKeys {
  const k256Key = root.derive(appId, 'app-key');
  const k256Public = Buffer.from(secp256k1.getPublicKey(k256Key, true));
  return {
    envCryptKey: root.derive(appId, 'env-encrypt-key'),
    diskCryptKey: root.derive(Buffer.concat([appId, instanceId]), 'app-disk-crypt-key'),
    k256Key,
    k256Signature: root.signer().signMessage('dstack-kms-issued', appId, k256Public),
  };
}

// Fresh random root keys.
export function createKmsRoot(): KmsRoot {
  let k256 = Buffer.from(secp256k1.utils.randomSecretKey());
  let signer = createKmsKey(k256);
  let ca: { caKeyPem: string; tempCaKeyPem: string } | undefined;
  return {
    signer: () => signer,
    derive: (appId, purpose) => Buffer.from(hkdfSync('sha256', k256, Buffer.alloc(0), Buffer.concat([appId, Buffer.from(purpose)]), 32)),
    export: () => {
      ca ??= { caKeyPem: newKeyPem(), tempCaKeyPem: newKeyPem() };
      return { k256Hex: k256.toString('hex'), ...ca };
    },
    adopt: (keys) => {
      k256 = Buffer.from(keys.k256Hex, 'hex');
      signer = createKmsKey(k256);
      ca = { caKeyPem: keys.caKeyPem, tempCaKeyPem: keys.tempCaKeyPem };
    },
  };
}
