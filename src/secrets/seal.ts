import type { PublicKeyResponse } from '../vmm/messages.ts';
import type { EnvEntry } from './dotenv.ts';
import { encryptEnv } from './encrypt.ts';
import { verifyEnvPubkey } from './pubkey.ts';
import { SecretsError } from './errors.ts';

export type SealDeps = {
  vmm: { getAppEnvEncryptPubKey(appIdHex: string): Promise<PublicKeyResponse> };
  // The KMS's k256 public key; empty when init has not learned it.
  kmsPublicKeyHex: string;
  now: () => number;
};

// Encrypt an app's env entries for encrypted_env: fetch the app's env key from the VMM (which
// asks the KMS), check the KMS's signature and age, then encrypt to it.
export async function sealEnv(deps: SealDeps, app: string, appId: string, entries: EnvEntry[]): Promise<string> {
  if (deps.kmsPublicKeyHex === '') {
    throw new SecretsError(
      'ENV_KMS_KEY',
      `app "${app}" has an env file, but the KMS's public key is not known, so the key to encrypt it for cannot be checked; ` +
        'run `dstack-supervisor init` (or set [apps] kms_public_key in supervisor.toml)',
    );
  }
  const reply = await deps.vmm.getAppEnvEncryptPubKey(appId);
  const publicKey = verifyEnvPubkey({ app, appId, reply }, { kmsPublicKeyHex: deps.kmsPublicKeyHex, now: deps.now });
  return encryptEnv(entries, publicKey);
}
