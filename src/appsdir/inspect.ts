import { createHash } from 'node:crypto';
import { constants, type BigIntStats } from 'node:fs';
import { lstat, open, realpath, stat } from 'node:fs/promises';
import { join, relative, isAbsolute } from 'node:path';
import { describeFileType } from '../fsx/guarded-read.ts';
import { describeHardLink, isHardLinked } from '../fsx/hard-link.ts';
import { readStillCurrent, statKey } from '../fsx/unchanged.ts';

// Why a candidate file is refused (docs/apps-dir.md rules 1 and 4). A refused file is neither deployed
// nor torn down: whatever runs keeps running.
export const REFUSAL_CODES = [
  'APP_NOT_REGULAR',
  'APP_TOO_LARGE',
  'APP_SYMLINK_OUTSIDE',
  'APP_HARDLINK',
  'APP_OWNER',
  'APP_WRITABLE',
  'APP_UNREADABLE',
] as const;

// One of REFUSAL_CODES.
export type RefusalCode = (typeof REFUSAL_CODES)[number];

// The limits a candidate is checked against.
export type InspectLimits = { owner: number; maxFileBytes: number };

// What one look at a candidate file found. `fingerprint` changes whenever size, mtime, inode,
// mode, owner, symlink target or content do; two equal fingerprints Q apart mean "settled".
// `changing`: the file changed while we looked at it, so it cannot be settled yet.
export type Observation =
  | { kind: 'gone' }
  | { kind: 'changing' }
  | { kind: 'refused'; fingerprint: string; code: RefusalCode; message: string }
  // `changedMs`: the kernel's ctime (of the link too, for a symlink), when the file last changed.
  | { kind: 'read'; fingerprint: string; bytes: Buffer; sha256: string; size: number; mtimeMs: number; ino: number; changedMs: number };

// A read of a candidate, kept so the next scan can skip reading and hashing an unchanged file.
export type EarlierRead = { key: string; readStartedMs: number; observation: Extract<Observation, { kind: 'read' }> };

function errno(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

// The first rule-1/rule-4 check `st` fails, or null when the file may be read.
function checkStat(path: string, st: BigIntStats, limits: InspectLimits): { code: RefusalCode; message: string } | null {
  if (!st.isFile()) {
    return { code: 'APP_NOT_REGULAR', message: `${path}: is ${describeFileType(st)}; an app must be a regular file (or a symlink to one inside the apps directory)` };
  }
  if (isHardLinked(st)) return { code: 'APP_HARDLINK', message: describeHardLink(path, st.nlink) };
  if (st.uid !== BigInt(limits.owner)) {
    return { code: 'APP_OWNER', message: `${path}: owned by uid ${st.uid}, but app files must be owned by uid ${limits.owner} ([apps] owner); run: chown ${limits.owner} ${path}` };
  }
  if ((st.mode & 0o022n) !== 0n) {
    const mode = (st.mode & 0o7777n).toString(8).padStart(4, '0');
    return { code: 'APP_WRITABLE', message: `${path}: is group- or world-writable (mode ${mode}), so others could change what runs; run: chmod go-w ${path}` };
  }
  if (st.size > BigInt(limits.maxFileBytes)) {
    return { code: 'APP_TOO_LARGE', message: `${path}: is ${st.size} bytes, over the ${limits.maxFileBytes}-byte limit ([apps] max_file_bytes); shrink it or raise the limit` };
  }
  return null;
}

function isInside(dir: string, target: string): boolean {
  const rel = relative(dir, target);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
}

// Resolve `path` (following a symlink only if it stays inside `realDir`) and stat the target.
async function resolveTarget(path: string, realDir: string): Promise<{ target: string; st: BigIntStats; link: BigIntStats } | Observation> {
  const link = await lstat(path, { bigint: true });
  if (!link.isSymbolicLink()) return { target: path, st: link, link };
  let target: string;
  try {
    target = await realpath(path);
  } catch (err) {
    if (errno(err) !== 'ENOENT' && errno(err) !== 'ELOOP') throw err;
    const message = `${path}: is a symlink that resolves to nothing; point it at a regular file inside the apps directory`;
    return { kind: 'refused', fingerprint: `dangling:${statKey(link)}`, code: 'APP_NOT_REGULAR', message };
  }
  if (!isInside(realDir, target)) {
    const message = `${path}: is a symlink to ${target}, outside the apps directory; copy the file into the directory instead`;
    return { kind: 'refused', fingerprint: `outside:${statKey(link)}:${target}`, code: 'APP_SYMLINK_OUTSIDE', message };
  }
  return { target, st: await stat(target, { bigint: true }), link };
}

// Read at most `limit` bytes through an open descriptor; more would mean the file grew.
async function readCapped(path: string, expected: BigIntStats, limit: number): Promise<Buffer | null> {
  // O_NONBLOCK: if a FIFO was swapped in since the stat, open must not hang waiting for a writer.
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const before = await handle.stat({ bigint: true });
    if (statKey(before) !== statKey(expected)) return null;
    const buf = Buffer.alloc(Math.min(Number(before.size), limit) + 1);
    let length = 0;
    let bytesRead = 0;
    do {
      ({ bytesRead } = await handle.read(buf, length, buf.length - length, length));
      length += bytesRead;
    } while (bytesRead > 0 && length < buf.length);
    const after = await handle.stat({ bigint: true });
    return statKey(after) === statKey(before) && BigInt(length) === before.size ? buf.subarray(0, length) : null;
  } finally {
    await handle.close();
  }
}

// What a read of a candidate is kept by: the stats of the file read and of the name it was found
// under (the same stat for a plain file), where that name resolved to, and the kernel's last
// change of either (wall ms).
function readKeyOf(st: BigIntStats, link: BigIntStats, target: string): { key: string; changedMs: number } {
  const changedNs = st.ctimeNs > link.ctimeNs ? st.ctimeNs : link.ctimeNs;
  return { key: `${statKey(st)}:${changedNs}:${statKey(link)}:${target}`, changedMs: Number(changedNs / 1_000_000n) };
}

// Whether `earlier`, the kept read of `file` in `dir` from a look that found a plain file (a
// lasting look), stands for what is there now, as inspectCandidate would decide: false when it
// is gone, replaced, written, chmod'ed, chown'ed, or was read too soon after its last change.
export async function readStands(dir: string, file: string, earlier: EarlierRead): Promise<boolean> {
  const path = join(dir, file);
  try {
    const st = await lstat(path, { bigint: true });
    const { key, changedMs } = readKeyOf(st, st, path);
    return readStillCurrent(earlier, key, changedMs);
  } catch {
    return false;
  }
}

// What one look found. `lasting`: the observation stays true until the candidate's own name sees
// an inotify event (a write, rename, chmod or chown of it), so an event pass may take it again
// without looking; not so for a symlink (its target can change under another name, or in a
// subdirectory no watch covers) nor for a file that could not be read.
export type Look = { observation: Observation; read?: EarlierRead; lasting: boolean };

// Look at one candidate (`file` inside `dir`, whose real path is `realDir`) and say what it is now;
// `earlier` is this file's read from the last scan, reused when the file provably did not change.
export async function inspectCandidate(
  dir: string,
  realDir: string,
  file: string,
  limits: InspectLimits,
  earlier: EarlierRead | undefined,
  wallNow: () => number,
): Promise<Look> {
  const path = join(dir, file);
  try {
    const resolved = await resolveTarget(path, realDir);
    if ('kind' in resolved) return { observation: resolved, lasting: false };
    const { target, st, link } = resolved;
    const lasting = st === link;
    const refusal = checkStat(path, st, limits);
    if (refusal !== null) return { observation: { kind: 'refused', fingerprint: `${refusal.code}:${statKey(st)}:${target}`, ...refusal }, lasting };
    const { key, changedMs } = readKeyOf(st, link, target);
    if (earlier !== undefined && readStillCurrent(earlier, key, changedMs)) return { observation: earlier.observation, read: earlier, lasting };
    const readStartedMs = wallNow();
    const bytes = await readCapped(target, st, limits.maxFileBytes);
    if (bytes === null) return { observation: { kind: 'changing' }, lasting: false };
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const observation = { kind: 'read' as const, fingerprint: `${statKey(st)}:${target}:${sha256}`, bytes, sha256, size: bytes.length, mtimeMs: Number(st.mtimeNs / 1_000_000n), ino: Number(st.ino), changedMs };
    return { observation, read: { key, readStartedMs, observation }, lasting };
  } catch (err) {
    const code = errno(err);
    if (code === 'ENOENT') return { observation: { kind: 'gone' }, lasting: false };
    // Replaced by a symlink, directory or FIFO between the stat and the open.
    if (code === 'ELOOP' || code === 'ENOTDIR' || code === 'ENXIO') return { observation: { kind: 'changing' }, lasting: false };
    const message = `${path}: cannot be read (${code ?? String(err)}); check its permissions and the file system`;
    return { observation: { kind: 'refused', fingerprint: `unreadable:${code ?? ''}`, code: 'APP_UNREADABLE', message }, lasting: false };
  }
}
