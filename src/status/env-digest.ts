// `env_digest` in an app's status: which NAME.env values the app's CVM was last given, so a tool
// that changed only values (same compose hash: values are not in it) can wait for the restart
// that delivers them (issue 17). The record's envHash is a plain sha256 of the values: published,
// a short or guessable secret could be brute-forced from it. The status gets an HMAC of it under
// a random key that never leaves the host (`<state_dir>/env-digest.key`, 0600, root's like the
// state records): equal values give equal digests on this host, and without the key a digest
// says nothing of them. `dstack-supervisor hash FILE --json` prints the digest NAME.env has now.
import { createHmac, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeError, SupervisorError } from '../errors.ts';
import { writeFileOnce } from '../fsx/atomic.ts';

// The key file cannot be read, created or is not a key.
export const ENV_DIGEST_KEY = 'ENV_DIGEST_KEY';

const KEY_FILE = 'env-digest.key';
const KEY_BYTES = 32;
const DOMAIN = 'dstack-supervisor env_digest v1\n';

// Turns a record's envHash (undefined: no NAME.env) into the status's env_digest.
export type EnvDigester = (envHash: string | undefined) => string | null;

// Where the key lives.
export function envDigestKeyPath(stateDir: string): string {
  return join(stateDir, KEY_FILE);
}

// The service's digester: this host's key read from `stateDir`, else a new one written there
// first (0600, never over an existing file: one key per host, whoever comes first).
export async function openEnvDigester(stateDir: string): Promise<EnvDigester> {
  return digesterOf(await loadOrCreateKey(stateDir));
}

// The digester of the key the service made, for `hash`, which changes nothing on the host: undefined
// while there is no key (the service never ran with this state_dir). Throws ENV_DIGEST_KEY when
// the key cannot be read (not root?).
export async function readEnvDigester(stateDir: string): Promise<EnvDigester | undefined> {
  const key = await readKey(envDigestKeyPath(stateDir));
  return key && digesterOf(key);
}

function digesterOf(key: Buffer): EnvDigester {
  return (envHash) => (envHash === undefined || envHash === '' ? null : createHmac('sha256', key).update(DOMAIN).update(envHash).digest('hex'));
}

async function loadOrCreateKey(stateDir: string): Promise<Buffer> {
  const file = envDigestKeyPath(stateDir);
  const kept = await readKey(file);
  if (kept) return kept;
  // Another process (the service, or a `hash` run) may write it first: theirs is the host's key.
  await writeFileOnce(file, `${randomBytes(KEY_BYTES).toString('hex')}\n`).catch((err: unknown) => {
    throw keyError(file, 'cannot be written', err);
  });
  const key = await readKey(file);
  if (!key) throw keyError(file, 'was not there after it was written');
  return key;
}

// The key in `file`, or undefined when there is none.
async function readKey(file: string): Promise<Buffer | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw keyError(file, 'cannot be read', err);
  }
  const hex = text.trim();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw keyError(file, `is not ${KEY_BYTES} bytes of lower-case hex; remove it and restart dstack-supervisor for a new key (every app's env_digest changes with it)`);
  return Buffer.from(hex, 'hex');
}

function keyError(file: string, problem: string, cause?: unknown): SupervisorError {
  const why = cause === undefined ? '' : ` (${describeError(cause)})`;
  return new SupervisorError(ENV_DIGEST_KEY, `${file}: the key of env_digest ${problem}${why}`, cause === undefined ? undefined : { cause });
}
