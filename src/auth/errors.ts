// Errors of the auth-config.json allowlist. The operator-facing text is built here, in one place,
// so every message names the file, the failing step and what to do next.
import { SupervisorError, describeError } from '../errors.ts';

// Stable codes; tests and callers branch on these, never on wording.
export type AuthErrorCode =
  | 'AUTH_MISSING'
  | 'AUTH_INVALID'
  | 'AUTH_READ'
  | 'AUTH_WRITE'
  | 'AUTH_LOCK'
  | 'AUTH_LOCK_TIMEOUT'
  | 'AUTH_BAD_HEX'
  | 'AUTH_CLOSED';

// Any failure to read, lock, edit or write the allowlist.
export class AuthError extends SupervisorError {
  declare readonly code: AuthErrorCode;
  constructor(code: AuthErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'AuthError';
  }
}

// The file is absent. Never replaced by an empty one: auth-simple would then deny every app,
// and a wrong path would silently start a second, unused allowlist.
export function missingFileError(path: string, cause: unknown): AuthError {
  return new AuthError(
    'AUTH_MISSING',
    `${path}: auth allowlist does not exist; run \`dstack-supervisor init\` to create it, or fix the configured path`,
    { cause },
  );
}

// The file is there but auth-simple could not use it (bad JSON, wrong shape), or it lacks `apps`.
export function invalidFileError(path: string, problem: string, cause?: unknown): AuthError {
  return new AuthError(
    'AUTH_INVALID',
    `${path}: auth allowlist is invalid (${problem}); auth-simple denies every app while it is, so fix the file by hand ` +
      `(nothing was written)`,
    { cause },
  );
}

// Reading failed for another reason (usually permissions).
export function readError(path: string, cause: unknown): AuthError {
  return new AuthError('AUTH_READ', `${path}: cannot read auth allowlist (${describeError(cause)}); check its owner and mode`, {
    cause,
  });
}

// The atomic replace failed at `step`; the original file is untouched.
export function writeError(path: string, step: string, cause: unknown): AuthError {
  return new AuthError(
    'AUTH_WRITE',
    `${path}: writing auth allowlist failed while ${step} (${describeError(cause)}); the previous file is unchanged, ` +
      `check free space and permissions of its directory`,
    { cause },
  );
}

// flock could not be run or refused the lock file.
export function lockError(lockPath: string, cause: unknown): AuthError {
  return new AuthError(
    'AUTH_LOCK',
    `${lockPath}: cannot take the allowlist lock (${describeError(cause)}); util-linux \`flock\` must be installed and ` +
      `the directory writable`,
    { cause },
  );
}

// Another writer held the lock for longer than we wait.
export function lockTimeoutError(lockPath: string, timeoutMs: number): AuthError {
  return new AuthError(
    'AUTH_LOCK_TIMEOUT',
    `${lockPath}: another process held the allowlist lock for over ${timeoutMs} ms; find it with \`lslocks\` or ` +
      `\`fuser ${lockPath}\``,
  );
}

// An app id or compose hash that is not hex once normalised.
export function badHexError(path: string, what: string, value: string): AuthError {
  return new AuthError(
    'AUTH_BAD_HEX',
    `${path}: ${what} ${JSON.stringify(value)} is not a hex string; pass the value the VMM reported`,
  );
}

// An edit was requested after close().
export function closedError(path: string): AuthError {
  return new AuthError('AUTH_CLOSED', `${path}: allowlist was closed; open it again to edit`);
}
