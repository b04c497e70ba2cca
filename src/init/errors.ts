// Errors of the init steps. Each message names the file or probe, the step that failed and the
// next thing to do; callers and tests branch on `code`, never on wording.
import { SupervisorError, describeError } from '../errors.ts';

// Stable codes, one per step.
export type InitErrorCode =
  | 'INIT_PREFLIGHT'
  | 'INIT_IMAGE'
  | 'INIT_IMAGE_DOWNLOAD'
  | 'INIT_RENDER'
  | 'INIT_TLS'
  | 'INIT_JOURNAL';

// A failed init step.
export class InitError extends SupervisorError {
  declare readonly code: InitErrorCode;
  constructor(code: InitErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'InitError';
  }
}

// One thing the host lacks: what is missing, the command that shows it, where to read more, and
// a few words for the one-line summary `systemctl status` shows (`no /dev/sgx_enclave`).
export type PreflightProblem = { what: string; check: string; docs: string; label: string };

// The host is not ready; `problems` lists every finding, not only the first.
export class PreflightError extends InitError {
  readonly problems: readonly PreflightProblem[];
  constructor(problems: readonly PreflightProblem[], sysroot: string) {
    super('INIT_PREFLIGHT', formatPreflight(problems, sysroot));
    this.name = 'PreflightError';
    this.problems = problems;
  }
}

// `preflight failed: 3 problems (no /dev/sgx_enclave, no /dev/sgx_provision, QEMU without TDX)`:
// the STATUS= line a failed start leaves for `systemctl status`.
export function summarizePreflight(problems: readonly PreflightProblem[]): string {
  return `preflight failed: ${problems.length} problem${problems.length === 1 ? '' : 's'} (${problems.map((p) => p.label).join(', ')})`;
}

function formatPreflight(problems: readonly PreflightProblem[], sysroot: string): string {
  const where = sysroot === '/' ? 'this host' : `the host under sysroot ${sysroot}`;
  const head = `init preflight: ${where} is not ready (${problems.length} problem${problems.length === 1 ? '' : 's'}); nothing was changed. Fix these and start again:`;
  const items = problems.map((p) => `  - ${p.what}\n      check: ${p.check}\n      read:  ${p.docs}`);
  return [head, ...items].join('\n');
}

function withCause(message: string, cause: unknown): string {
  return cause === undefined ? message : `${message}: ${describeError(cause)}`;
}

// A guest image that is missing, incomplete or does not match its checksums.
export function imageError(message: string, cause?: unknown): InitError {
  return new InitError('INIT_IMAGE', `init image: ${withCause(message, cause)}`, { cause });
}

// A download that failed or did not match the published sha256; nothing was unpacked.
export function downloadError(url: string, message: string, cause?: unknown): InitError {
  return new InitError('INIT_IMAGE_DOWNLOAD', `init image download ${url}: ${withCause(message, cause)}`, { cause });
}

// A config file that cannot be read, parsed or written.
export function renderError(path: string, message: string, cause?: unknown): InitError {
  return new InitError('INIT_RENDER', `init render ${path}: ${withCause(message, cause)}`, { cause });
}

// A certificate or key that cannot be read or written.
export function tlsError(path: string, message: string, cause?: unknown): InitError {
  return new InitError('INIT_TLS', `init tls ${path}: ${withCause(message, cause)}`, { cause });
}

// The init journal cannot be read or written.
export function journalError(path: string, message: string, cause?: unknown): InitError {
  return new InitError('INIT_JOURNAL', `init journal ${path}: ${withCause(message, cause)}`, { cause });
}
