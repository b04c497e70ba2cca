// The supervisor's handle on auth-config.json: register and withdraw compose hashes for the apps
// it deploys, leaving everything else in the file exactly as it was (docs/design.md "The contract with
// dstack": the supervisor owns `apps[<app id>]` entries and nothing else).
import { open, realpath } from 'node:fs/promises';
import { acquireLock, lockPathFor, type LockOptions } from './lock.ts';
import { writeFileAtomic } from '../fsx/atomic.ts';
import {
  applyEdit,
  editChanges,
  entryHashes,
  forkAllowlist,
  normalizeHexLikeDstackCli,
  parseAllowlist,
  serializeAllowlist,
  type AllowlistDocument,
  type AllowlistEdit,
} from './document.ts';
import { badHexError, closedError, missingFileError, readError, writeError } from './errors.ts';

// Mode bits and owner of the allowlist, kept across rewrites: auth-simple's user must still read it.
type FileIdentity = { mode: number; uid: number; gid: number };
import type { AuthConfig } from './schema.ts';

// Reported after each write that changed the file: which file, and how many edits it carried.
export type AllowlistWritten = { path: string; edits: number };

// Lock wait and flock binary; a hook told of every write (for logging, and how tests count them).
export type AllowlistDeps = { lock?: LockOptions; onWrite?: (event: AllowlistWritten) => void };

// An open allowlist. Edits resolve once a write containing them is on disk (or nothing needed
// writing); edits made together share one locked read-modify-write.
export type Allowlist = {
  path: string;
  addHash(appId: string, composeHash: string): Promise<void>;
  removeHash(appId: string, composeHash: string): Promise<void>;
  removeApp(appId: string): Promise<void>;
  // The app's entry lists exactly these hashes afterwards (created if missing).
  setHashes(appId: string, composeHashes: string[]): Promise<void>;
  // Set (or with '' clear) the gatewayAppId every booting guest is told (Tier 2).
  setGatewayAppId(appId: string): Promise<void>;
  // Let the KMS measured `mrAggregated` (booted from `osImageHash`, '' = not given) take part in a
  // KMS handover with this host's KMS (issue 17).
  allowKms(mrAggregated: string, osImageHash: string): Promise<void>;
  read(): Promise<AuthConfig>;
  // The hashes the app's entry lists as auth-simple reads them, in the form this module writes
  // (lowercase, no 0x), or undefined without an entry.
  hashesOf(appId: string): Promise<string[] | undefined>;
  close(): Promise<void>;
};

type Pending = { edit: AllowlistEdit; resolve: () => void; reject: (err: unknown) => void };

// Open the allowlist at `path`. No I/O happens until the first call, so a missing or invalid
// file is reported per call (AUTH_MISSING / AUTH_INVALID) and never replaced by an empty one.
export function openAllowlist(path: string, deps: AllowlistDeps = {}): Allowlist {
  let queue: Pending[] = [];
  let draining: Promise<void> | undefined;
  let closed = false;
  const cache: ParsedCache = { entry: undefined };

  const submit = (edit: AllowlistEdit): Promise<void> => {
    if (closed) return Promise.reject(closedError(path));
    return new Promise((resolve, reject) => {
      queue.push({ edit, resolve, reject });
      draining ??= drain();
    });
  };

  // One batch per loop turn: whatever queued up while the previous write was in flight.
  const drain = async (): Promise<void> => {
    // Let the rest of this tick's callers join the first batch.
    await new Promise((resolve) => setImmediate(resolve));
    while (queue.length > 0) {
      const batch = queue;
      queue = [];
      await writeBatch(path, batch, deps, cache);
    }
    draining = undefined;
  };

  const hex = (what: string, value: string): string => {
    const normalised = normalizeHexLikeDstackCli(value);
    if (!/^[0-9a-f]+$/.test(normalised)) throw badHexError(path, what, value);
    return normalised;
  };

  // Validate synchronously but report through the promise, like every other failure here.
  const edit = (make: () => AllowlistEdit): Promise<void> => {
    try {
      return submit(make());
    } catch (err) {
      return Promise.reject(err);
    }
  };

  return {
    path,
    addHash: (appId, composeHash) =>
      edit(() => ({ kind: 'addHash', appId: hex('app id', appId), hash: hex('compose hash', composeHash) })),
    removeHash: (appId, composeHash) =>
      edit(() => ({ kind: 'removeHash', appId: hex('app id', appId), hash: hex('compose hash', composeHash) })),
    removeApp: (appId) => edit(() => ({ kind: 'removeApp', appId: hex('app id', appId) })),
    setHashes: (appId, composeHashes) =>
      edit(() => ({ kind: 'setHashes', appId: hex('app id', appId), hashes: composeHashes.map((h) => hex('compose hash', h)) })),
    setGatewayAppId: (appId) => edit(() => ({ kind: 'setGatewayAppId', appId: appId === '' ? '' : hex('gateway app id', appId) })),
    allowKms: (mrAggregated, osImageHash) =>
      edit(() => ({ kind: 'allowKms', mrAggregated: hex('KMS mr_aggregated', mrAggregated), osImageHash: osImageHash === '' ? '' : hex('os image hash', osImageHash) })),
    read: async () => (await loadAllowlist(path, cache)).doc.config,
    hashesOf: async (appId) => entryHashes((await loadAllowlist(path, cache)).doc, hex('app id', appId))?.map(normalizeHexLikeDstackCli),
    close: async () => {
      closed = true;
      await draining;
    },
  };
}

// The last parse of the file, by the identity of what was read: the file is replaced by rename,
// never written in place, so the same device, inode, size and mtime mean the same content, unless
// the parse was taken right after that mtime (see readRacily); a thousand-app allowlist takes
// milliseconds to parse. `trusted`: the key alone proves the parse is of the file as it is.
type ParsedCache = { entry: { key: string; doc: AllowlistDocument; trusted: boolean } | undefined };

// Settle every edit of the batch with the outcome of its single locked read-modify-write. Edits
// that change nothing (a hash already registered) are settled from a read without the lock:
// writers replace the file atomically, so the read sees a whole version, and any later removal
// could as well have come just after a locked read.
async function writeBatch(path: string, batch: Pending[], deps: AllowlistDeps, cache: ParsedCache): Promise<void> {
  const edits = batch.map((p) => p.edit);
  try {
    const { doc } = await loadAllowlist(path, cache);
    // If no edit changes the file as it is, applying them in turn changes nothing either.
    if (!edits.some((e) => editChanges(doc, e))) {
      for (const pending of batch) pending.resolve();
      return;
    }
    const lock = await acquireLock(lockPathFor(path), deps.lock);
    try {
      await editFile(path, edits, deps, cache);
    } finally {
      await lock.release();
    }
  } catch (err) {
    for (const pending of batch) pending.reject(err);
    return;
  }
  for (const pending of batch) pending.resolve();
}

async function editFile(path: string, edits: AllowlistEdit[], deps: AllowlistDeps, cache: ParsedCache): Promise<void> {
  const loaded = await loadAllowlist(path, cache);
  const doc = forkAllowlist(loaded.doc);
  // map, not some: every edit must be applied even after the first change.
  if (!edits.map((e) => applyEdit(doc, e)).includes(true)) return;
  const { target, identity } = loaded;
  try {
    await writeFileAtomic(target, serializeAllowlist(doc), { mode: identity.mode & 0o7777, owner: identity });
  } catch (err) {
    throw writeError(path, 'replacing the file (temp file, fsync, rename, directory fsync)', err);
  }
  deps.onWrite?.({ path, edits: edits.length });
}

// Read and parse the file (or take the parse cached for this very version). `target` resolves
// symlinks so the rename replaces the real file, not the link; `identity` is taken from the
// descriptor we read, so it belongs to the same inode.
async function loadAllowlist(path: string, cache: ParsedCache): Promise<{ doc: AllowlistDocument; target: string; identity: FileIdentity }> {
  let target: string;
  let text: string | undefined;
  let identity: FileIdentity;
  let key: string;
  let racy = false;
  try {
    target = await realpath(path);
    const file = await open(target, 'r');
    try {
      const stat = await file.stat({ bigint: true });
      identity = { mode: Number(stat.mode), uid: Number(stat.uid), gid: Number(stat.gid) };
      key = `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeNs}`;
      if (cache.entry?.key !== key || !cache.entry.trusted) text = await file.readFile('utf8');
      racy = readRacily(stat.mtimeNs);
    } finally {
      await file.close();
    }
  } catch (err) {
    throw isNotFound(err) ? missingFileError(path, err) : readError(path, err);
  }
  if (text !== undefined) cache.entry = { key, doc: parseAllowlist(path, text), trusted: !racy };
  return { doc: (cache.entry as { doc: AllowlistDocument }).doc, target, identity };
}

// Like git's "racily clean" index entries: a file read within a clock tick or so of its mtime may be
// changed again with the same mtime (the kernel stamps it from a coarse clock), by a write of the
// same size into an inode number ext4 just freed and hands out again, so the key cannot prove that
// parse current; it is read again next time, until a read comes well after the mtime (found by the
// soak: an entry dropped by hand looked present and was never repaired). Ticks are 1–10 ms.
const RACY_NS = 100_000_000n;
function readRacily(mtimeNs: bigint): boolean {
  return BigInt(Date.now()) * 1_000_000n - mtimeNs < RACY_NS;
}

function isNotFound(err: unknown): boolean {
  return err instanceof Error && 'code' in err && err.code === 'ENOENT';
}
