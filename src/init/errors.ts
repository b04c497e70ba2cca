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
  | 'INIT_JOURNAL'
  // A KMS replica (kms-onboard.ts): the source cannot be reached, has no keys yet, refused this
  // host's KMS, is not trusted by this host, or the onboarding failed otherwise.
  | 'INIT_KMS_SOURCE_UNREACHABLE'
  | 'INIT_KMS_SOURCE_NOT_READY'
  | 'INIT_KMS_ONBOARD_DENIED'
  | 'INIT_KMS_ONBOARD_UNTRUSTED'
  | 'INIT_KMS_ONBOARD';

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

// What is left after a KMS replica's init stopped: said in every onboarding message.
const ONBOARD_STATE = (deployed: string | undefined): string =>
  deployed === undefined
    ? 'Nothing was deployed'
    : `This host's KMS CVM ${deployed} waits in onboarding mode with no keys; no app can get keys from it, and the next init resumes it`;

// Before anything is deployed: the source KMS does not answer at all.
export function sourceUnreachable(url: string, cause: unknown): InitError {
  return new InitError(
    'INIT_KMS_SOURCE_UNREACHABLE',
    `init kms onboarding: the source KMS ${url} ([init] kms_onboard_from) cannot be reached: ${describeError(cause)}. ${ONBOARD_STATE(undefined)}. ` +
      `Check that the source host publishes its KMS beyond loopback (its supervisor.toml [init] kms_host_address: "0.0.0.0" or its LAN address; the default 127.0.0.1 is that host only) ` +
        `and that its KMS port is reachable from this host and its CVMs (firewall), then start again`,
    { cause },
  );
}

// Before anything is deployed: the source answers but serves no keys yet.
export function sourceNotReady(url: string, what: string): InitError {
  return new InitError(
    'INIT_KMS_SOURCE_NOT_READY',
    `init kms onboarding: the source KMS ${url} ([init] kms_onboard_from) ${what}: it has not bootstrapped its keys yet. ${ONBOARD_STATE(undefined)}. ` +
      'Let init finish on the source host first (dstack-supervisor status there says ready), then start again',
  );
}

// This host's auth-config.json allows no source KMS (before deploying), or this host's KMS
// refused the source's measurement (after): only the operator can add it.
export function onboardUntrusted(authConfigPath: string, url: string, deployed: string | undefined, detail: string): InitError {
  return new InitError(
    'INIT_KMS_ONBOARD_UNTRUSTED',
    `init kms onboarding: ${authConfigPath}: ${detail}. A KMS onboards only from a KMS whose measurement its own auth-config.json lists in kms.mrAggregated. ` +
      `${ONBOARD_STATE(deployed)}. On the host of ${url} run \`dstack-supervisor kms measurement\`, here run the \`dstack-supervisor kms allow ...\` line it prints, then start again`,
  );
}

// The source KMS refused this host's KMS: its operator must allow this measurement.
export function onboardDenied(url: string, deployed: string, measurement: { mrAggregated: string; osImageHash: string }, reason: string): InitError {
  return new InitError(
    'INIT_KMS_ONBOARD_DENIED',
    `init kms onboarding: the source KMS ${url} refused this host's KMS (${reason}). Its host's auth-config.json must list this KMS: ` +
      `mr_aggregated ${measurement.mrAggregated} in kms.mrAggregated and os image ${measurement.osImageHash} in osImages (and allow this host's TCB status). ` +
      `${ONBOARD_STATE(deployed)}. On the host of ${url} run ` +
      `\`dstack-supervisor kms allow ${measurement.mrAggregated} --os-image ${measurement.osImageHash}\`, then start again here (systemctl restart dstack-supervisor)`,
  );
}

// Any other onboarding failure, with the KMS's own words; a later start may pass.
export function onboardFailed(url: string, deployed: string, what: string): InitError {
  return new InitError('INIT_KMS_ONBOARD', `init kms onboarding from ${url}: ${what}. ${ONBOARD_STATE(deployed)}; fix the cause, then start again`);
}
