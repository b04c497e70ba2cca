// The simulated KMS's k256 (secp256k1) root key. It signs the way dstack-kms does
// (Dstack-TEE/dstack kms/src/crypto.rs `sign_message`): keccak256(prefix ‖ ":" ‖ app_id ‖
// message), a recoverable ECDSA signature sent as 65 bytes r ‖ s ‖ recovery id. Its public key
// is what the real KMS's GetMeta returns as `k256_pubkey` (compressed SEC1).
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';

// A KMS signing key.
export type KmsKey = {
  // GetMeta `k256_pubkey`: 33-byte compressed SEC1, lowercase hex.
  publicKeyHex: string;
  // `sign_message(prefix, app_id, message)`, as lowercase hex of r ‖ s ‖ v.
  signMessage: (prefix: string, appId: Buffer, message: Buffer) => string;
};

// A KMS key from `secretKey` (32 bytes), or a fresh random one.
export function createKmsKey(secretKey: Uint8Array = secp256k1.utils.randomSecretKey()): KmsKey {
  return {
    publicKeyHex: Buffer.from(secp256k1.getPublicKey(secretKey, true)).toString('hex'),
    signMessage: (prefix, appId, message) => {
      const digest = keccak_256(Buffer.concat([Buffer.from(`${prefix}:`, 'utf8'), appId, message]));
      // noble's 'recovered' layout is v ‖ r ‖ s; k256 appends the recovery id instead.
      const vrs = secp256k1.sign(digest, secretKey, { prehash: false, format: 'recovered' });
      return Buffer.concat([vrs.subarray(1), vrs.subarray(0, 1)]).toString('hex');
    },
  };
}
