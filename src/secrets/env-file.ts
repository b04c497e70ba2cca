// NAME.env beside NAME.yaml (docs/apps-dir.md rule 1): the app's secrets. It is refused unless it is a
// regular file (not a symlink, not hard-linked) owned by the configured owner with mode exactly
// 0600 or 0400, the same gate as a compose file's but tighter, since these bytes are the secrets
// themselves.
import { createHash } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import { lstat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { inChunks, type Pace } from '../fsx/in-chunks.ts';
import { openNoFollow, ownerName, readAtMost, type GuardedOpen } from '../fsx/guarded-read.ts';
import { describeHardLink, isHardLinked } from '../fsx/hard-link.ts';
import { changedMsOf, changeKey, readStillCurrent, type ReadStamp } from '../fsx/unchanged.ts';
import { parseDotenv, type EnvEntry } from './dotenv.ts';
import { SecretsError } from './errors.ts';

// The largest env file read by default, as for compose files ([apps] max_file_bytes).
export const DEFAULT_ENV_MAX_BYTES = 1024 * 1024;

const ALLOWED_MODES = new Set([0o600, 0o400]);

// Who must own the file ([apps] owner) and the size limit.
export type EnvFileOptions = { owner: number; maxFileBytes?: number };

// A checked, parsed env file. `keys` (sorted) go into the manifest's allowed_envs and so into
// the compose hash; `values` (sorted by key) are what encryptEnv takes. `valuesHash` is a
// sha256 over the sorted pairs, not part of the compose hash: a changed valuesHash with equal
// keys is a value-only change (UpdateVm with a new encrypted_env, then restart). It is as
// sensitive as the file for guessable values: keep it in root-only state, never in status.
export type EnvFile = { path: string; keys: string[]; values: EnvEntry[]; valuesHash: string };

function errno(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

function permsError(path: string, owner: number, problem: string): SecretsError {
  const fix = `chmod 600 ${path}; chown ${ownerName(owner)} ${path}`;
  return new SecretsError('ENV_PERMS', `${path}: ${problem}; the app is not deployed with it until it is fixed: run ${fix}`);
}

// The first rule `st` breaks, as an ENV_PERMS or ENV_HARDLINK error, or null.
function checkStat(path: string, st: BigIntStats, options: EnvFileOptions): SecretsError | null {
  if (!st.isFile()) return permsError(path, options.owner, 'is not a regular file');
  if (isHardLinked(st)) return new SecretsError('ENV_HARDLINK', `${describeHardLink(path, st.nlink)}; the app is not deployed with it until then`);
  if (st.uid !== BigInt(options.owner)) return permsError(path, options.owner, `is owned by uid ${st.uid}, not by ${ownerName(options.owner)} (uid ${options.owner})`);
  const mode = Number(st.mode & 0o7777n);
  if (!ALLOWED_MODES.has(mode)) {
    return permsError(path, options.owner, `has mode ${mode.toString(8).padStart(4, '0')}, but a secrets file must be mode 0600 or 0400 so only its owner can read it`);
  }
  return null;
}

// sha256 over the sorted pairs, length-unambiguous (JSON), with a domain prefix.
function hashValues(values: readonly EnvEntry[]): string {
  return createHash('sha256').update('dstack-supervisor env values v1\n').update(JSON.stringify(values.map((e) => [e.key, e.value]))).digest('hex');
}

// Where app NAME's env file is: NAME.env in the directory of NAME.yaml / NAME.yml.
export function envPathBeside(composePath: string): string {
  return join(dirname(composePath), `${basename(composePath).replace(/\.ya?ml$/, '')}.env`);
}

// Open the file without following a symlink and check the open descriptor, so what is checked
// is what is read.
async function openChecked(path: string, options: EnvFileOptions): Promise<FileHandle | null> {
  let opened: GuardedOpen;
  try {
    opened = await openNoFollow(path);
  } catch (err) {
    throw new SecretsError('ENV_READ', `${path}: cannot be opened (${errno(err) ?? 'unknown error'}); check the file and its directory`);
  }
  if (opened.kind === 'missing') return null;
  if (opened.kind === 'symlink') throw permsError(path, options.owner, 'is a symlink; a secrets file must be a regular file in the apps directory');
  const refusal = checkStat(path, opened.st, options);
  if (refusal === null) return opened.handle;
  await opened.handle.close();
  throw refusal;
}

// Read and check the env file of the app whose compose file is `composePath`. Null when there
// is none (the app has no secrets). Throws ENV_PERMS, ENV_HARDLINK, ENV_READ or ENV_PARSE; no
// message holds a value from the file.
export async function readEnvFile(composePath: string, options: EnvFileOptions): Promise<EnvFile | null> {
  const path = envPathBeside(composePath);
  const handle = await openChecked(path, options);
  if (handle === null) return null;
  const limit = options.maxFileBytes ?? DEFAULT_ENV_MAX_BYTES;
  let bytes: Buffer | null;
  try {
    bytes = await readAtMost(handle, limit);
  } catch (err) {
    throw new SecretsError('ENV_READ', `${path}: cannot be read (${errno(err) ?? 'unknown error'}); check the file system`);
  } finally {
    await handle.close();
  }
  if (bytes === null) throw new SecretsError('ENV_READ', `${path}: is larger than ${limit} bytes ([apps] max_file_bytes); an env file holds variables, not data`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new SecretsError('ENV_PARSE', `${path}: is not valid UTF-8; save it as UTF-8`);
  } finally {
    bytes.fill(0);
  }
  const values = parseDotenv(text, path);
  return { path, keys: values.map((e) => e.key), values, valuesHash: hashValues(values) };
}

// readEnvFile with a memory (issue 18): each app's last outcome (the file, none, or the refusal it
// threw), kept by the lstat taken before the read. `recheck` false takes the last outcome as it
// is, with no system call: an event pass does so for the apps whose NAME.env saw no event.
// `recheck` true lstats the file and reads it again unless the stat proves the last read
// current (src/fsx/unchanged.ts).
export type EnvFileReader = {
  read(composePath: string, recheck: boolean): Promise<EnvFile | null>;
  // Whether a read without recheck would answer from memory (no I/O error made it look again).
  holds(composePath: string): boolean;
  // Forget the env file beside this compose file: its next read looks at it.
  forget(composePath: string): void;
  // Of the env files beside `composePaths`, the entry names (NAME.env) of those a read would look
  // at again: appeared, gone or changed since the outcome held for them (by an lstat each, as a
  // read with recheck decides, and no read), or with no outcome held (issue 18: a resync's look
  // outside the pass). It only reads, so it may run while reads do.
  differences(composePaths: readonly string[], pace?: Pace): Promise<ReadonlySet<string>>;
};

type EnvOutcome = ReadStamp & ({ ok: true; env: EnvFile | null } | { ok: false; err: unknown });

// No NAME.env: nothing was read, so nothing can be racy.
const NO_FILE: EnvOutcome = { key: 'none', readStartedMs: 0, ok: true, env: null };

// The env file's lstat, or null when there is none.
async function lstatEnv(path: string): Promise<BigIntStats | null> {
  try {
    return await lstat(path, { bigint: true });
  } catch (err) {
    if (errno(err) === 'ENOENT') return null;
    throw err;
  }
}

// Whether `last` is still what reading the env file whose lstat is `st` (null: none) would give.
function stands(last: EnvOutcome, st: BigIntStats | null): boolean {
  return st === null ? last === NO_FILE : readStillCurrent(last, changeKey(st), changedMsOf(st));
}

// A reader of env files for `options`; `wallNow` is the wall clock reads are stamped with.
export function createEnvFileReader(options: EnvFileOptions & { wallNow?: () => number }): EnvFileReader {
  const { wallNow = Date.now } = options;
  const kept = new Map<string, EnvOutcome>();

  async function attempt(composePath: string, key: string): Promise<EnvOutcome> {
    const readStartedMs = wallNow();
    return readEnvFile(composePath, options).then(
      (env) => ({ key, readStartedMs, ok: true as const, env }),
      (err: unknown) => ({ key, readStartedMs, ok: false as const, err }),
    );
  }

  async function look(path: string, composePath: string, last: EnvOutcome | undefined): Promise<EnvOutcome> {
    let st: BigIntStats | null;
    try {
      st = await lstatEnv(path);
    } catch {
      // readEnvFile says what the error is, and its outcome is not kept (key '').
      return attempt(composePath, '');
    }
    if (last !== undefined && stands(last, st)) return last;
    return st === null ? NO_FILE : attempt(composePath, changeKey(st));
  }

  // Kept by the compose file's path: the env file's would be one path.join per app and pass.
  return {
    async read(composePath, recheck) {
      const last = kept.get(composePath);
      const outcome = !recheck && last !== undefined ? last : await look(envPathBeside(composePath), composePath, last);
      // An I/O error can pass with no change to the file's stat: such a file is looked at again.
      const transient = outcome.key === '' || (!outcome.ok && outcome.err instanceof SecretsError && outcome.err.code === 'ENV_READ');
      if (transient) kept.delete(composePath);
      else kept.set(composePath, outcome);
      if (outcome.ok) return outcome.env;
      throw outcome.err;
    },
    holds: (composePath) => kept.has(composePath),
    forget(composePath) {
      kept.delete(composePath);
    },
    async differences(composePaths, pace) {
      const differ = new Set<string>();
      await inChunks(composePaths, async (composePath) => {
        const path = envPathBeside(composePath);
        // None held: a read under way may yet keep one from an lstat before a change. Else the
        // lstat is checked against the outcome held once it is back: if it proves that one, the
        // file has not changed since it was read, so a read under way can only keep the same.
        const st = kept.has(composePath) ? await lstatEnv(path).catch(() => undefined) : undefined;
        const last = kept.get(composePath);
        if (st === undefined || last === undefined || !stands(last, st)) differ.add(basename(path));
      }, pace);
      return differ;
    },
  };
}
