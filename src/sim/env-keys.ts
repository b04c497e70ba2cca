// GetAppEnvEncryptPubKey for the simulated VMM. Upstream proxies it to the top-level `kms_url`
// (facts §2); here a per-app X25519 key pair stands in for the KMS's derived env key, so a test
// can decrypt what the supervisor encrypted. There is no KMS signature: the fields stay empty.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { PublicKeyResponse } from '../vmm/messages.ts';
import { VmmRejection } from './vm-rules.ts';

// One app's env-encryption key pair.
export type EnvKeyPair = { publicKeyHex: string; privateKey: KeyObject };

// The env keys of every app id asked for so far.
export type EnvKeys = {
  publicKeyResponse: (appIdHex: string, nowMs: number) => PublicKeyResponse;
  keyPairOf: (appIdHex: string) => EnvKeyPair;
};

// Keys for a VMM whose `kms_url` is `kmsUrl`; an empty one fails like dstackup's rendering does.
export function createEnvKeys(kmsUrl: string): EnvKeys {
  const pairs = new Map<string, EnvKeyPair>();
  const keyPairOf = (appIdHex: string): EnvKeyPair => {
    const known = pairs.get(appIdHex);
    if (known) return known;
    const { publicKey, privateKey } = generateKeyPairSync('x25519');
    const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x ?? '', 'base64url');
    const pair = { publicKeyHex: raw.toString('hex'), privateKey };
    pairs.set(appIdHex, pair);
    return pair;
  };
  return {
    keyPairOf,
    publicKeyResponse: (appIdHex, nowMs) => {
      if (kmsUrl === '') throw new VmmRejection('KMS is not configured');
      return {
        public_key: keyPairOf(appIdHex.toLowerCase()).publicKeyHex,
        signature: '',
        timestamp: Math.floor(nowMs / 1000),
        signature_v1: '',
      };
    },
  };
}
