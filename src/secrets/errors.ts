// Errors of an app's secrets: its NAME.env file and the KMS key its values are encrypted to.
// No message ever carries a value from the env file (issue 7, item 6): a message names the file,
// the line and at most a key, never what follows the `=`. No error keeps a `cause` that could
// hold plaintext either (JSON.parse errors quote their input, for one).
import { SupervisorError } from '../errors.ts';

// Stable codes; callers and tests branch on these, never on wording.
export type SecretsErrorCode =
  // NAME.env is not valid dotenv (or not UTF-8).
  | 'ENV_PARSE'
  // NAME.env is not a regular file owned by the configured owner with mode 0600 or 0400.
  | 'ENV_PERMS'
  // NAME.env has more than one name (a hard link), so it may be a file from outside apps.d.
  | 'ENV_HARDLINK'
  // NAME.env exists but cannot be read, or is over the size limit.
  | 'ENV_READ'
  // The KMS reply has no `signature_v1`: a KMS too old to sign with a timestamp.
  | 'ENV_PUBKEY_UNSIGNED'
  // `signature_v1` is malformed or was not made by the KMS's k256 key.
  | 'ENV_PUBKEY_FORGED'
  // `signature_v1`'s timestamp is older than the allowed age.
  | 'ENV_PUBKEY_STALE'
  // `signature_v1`'s timestamp is ahead of our clock by more than the allowed skew.
  | 'ENV_PUBKEY_FUTURE'
  // The env-encryption public key or the app id is not of the right shape.
  | 'ENV_PUBKEY_INVALID'
  // The configured KMS k256 public key is not a secp256k1 point.
  | 'ENV_KMS_KEY'
  // An `encrypted_env` blob does not open with the given key (simulator side).
  | 'ENV_DECRYPT';

// A secrets problem that keeps an app from being deployed with its env file.
export class SecretsError extends SupervisorError {
  declare readonly code: SecretsErrorCode;
  constructor(code: SecretsErrorCode, message: string) {
    super(code, message);
    this.name = 'SecretsError';
  }
}
