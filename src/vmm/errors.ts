import { describeError, SupervisorError } from '../errors.ts';

// Stable codes of failures talking to dstack-vmm; tests and callers branch on these.
export const VMM_ERROR_CODES = [
  // 400: the VMM ran the method and refused it; `vmmMessage` holds its own words.
  'VMM_RPC',
  // 401: the VMM has [auth] enabled and did not accept our token.
  'VMM_UNAUTHORIZED',
  // The token file could not be read, or is too large to be a token.
  'VMM_TOKEN_FILE',
  // The token file is a symlink, not a regular file, not the supervisor's, or readable by others.
  'VMM_TOKEN_UNSAFE',
  // Nothing listens at the address (socket missing, connection refused, host unknown).
  'VMM_UNREACHABLE',
  // No complete reply within the call's timeout.
  'VMM_TIMEOUT',
  // A reply or request that does not fit the prpc protocol (status, body, encoding).
  'VMM_PROTOCOL',
  // The configured VMM address is not unix:/path, tcp:host:port, http:// or https://.
  'VMM_ADDRESS',
] as const;

export type VmmErrorCode = (typeof VMM_ERROR_CODES)[number];

// A failed dstack-vmm call; `method` is the prpc method when one was being called.
export class VmmError extends SupervisorError {
  declare readonly code: VmmErrorCode;
  readonly method: string | undefined;
  readonly vmmMessage: string | undefined;
  constructor(
    code: VmmErrorCode,
    message: string,
    options: { method?: string; vmmMessage?: string; cause?: unknown } = {},
  ) {
    super(code, message, { cause: options.cause });
    this.name = 'VmmError';
    this.method = options.method;
    this.vmmMessage = options.vmmMessage;
  }
}

// The operator-facing text of every VmmError, kept in one place so wording stays consistent.

// 400 from the VMM: its message already names the cause (e.g. "VM not found").
export function rpcFailedError(method: string, vmmMessage: string): VmmError {
  const text = vmmMessage === '' ? '(the VMM gave no message)' : vmmMessage;
  return new VmmError('VMM_RPC', `dstack-vmm ${method} failed: ${text}`, { method, vmmMessage });
}

// 401 from the VMM.
export function unauthorizedError(method: string, url: string, tokenFile: string | undefined): VmmError {
  const message =
    tokenFile === undefined
      ? `dstack-vmm at ${url} requires a token (HTTP 401 on ${method}) and none is configured; ` +
        'set the VMM token file in supervisor.toml to a file holding one of [auth].tokens of vmm.toml'
      : `dstack-vmm at ${url} rejected the token from ${tokenFile} (HTTP 401 on ${method}); ` +
        `check that ${tokenFile} exists and holds one of [auth].tokens of vmm.toml, and that dstack-vmm was restarted after the change`;
  return new VmmError('VMM_UNAUTHORIZED', message, { method });
}

// The token file exists but cannot be read, or is too large; `cause` is an error or the problem.
export function tokenFileError(method: string, tokenFile: string, cause: unknown): VmmError {
  return new VmmError(
    'VMM_TOKEN_FILE',
    `cannot read the dstack-vmm token file ${tokenFile} for ${method}: ${describeError(cause)}; ` +
      'create it with one of [auth].tokens of vmm.toml, readable by the supervisor',
    { method, cause },
  );
}

// The token file breaks a StrictModes rule; nothing is sent until `fix` is done.
export function unsafeTokenFileError(method: string, tokenFile: string, problem: string, fix: string): VmmError {
  return new VmmError(
    'VMM_TOKEN_UNSAFE',
    `the dstack-vmm token file ${tokenFile} ${problem}, but it must be a regular file of the supervisor's user ` +
      `that no one else can read, so ${method} was not sent; ${fix}`,
    { method },
  );
}

// Connection-level failure before any reply.
export function unreachableError(method: string, url: string, cause: unknown): VmmError {
  return new VmmError(
    'VMM_UNREACHABLE',
    `dstack-vmm is not reachable at ${url} (${method}: ${describeError(cause)}); ` +
      'check that dstack-vmm.service is running and that its vmm.toml `address` matches',
    { method, cause },
  );
}

// The per-call deadline passed.
export function timeoutError(method: string, url: string, timeoutMs: number): VmmError {
  return new VmmError(
    'VMM_TIMEOUT',
    `dstack-vmm at ${url} did not answer ${method} within ${timeoutMs} ms; ` +
      'check `journalctl -u dstack-vmm` for a stuck VMM, or raise the timeout',
    { method },
  );
}

// A VMM address we cannot dial.
export function addressError(address: string): VmmError {
  return new VmmError(
    'VMM_ADDRESS',
    `dstack-vmm address "${address}" is not understood; use the vmm.toml form ` +
      '(unix:/run/dstack/vmm.sock or tcp:127.0.0.1:9080) or an http:// or https:// URL',
  );
}

// Anything else that does not follow the prpc protocol.
export function protocolError(method: string, detail: string, cause?: unknown): VmmError {
  return new VmmError('VMM_PROTOCOL', `dstack-vmm ${method}: ${detail}`, { method, cause });
}
