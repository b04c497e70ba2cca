// The supervisor's handle on auth-config.json: register and withdraw compose hashes for the apps
// it deploys, leaving everything else in the file exactly as it was (docs/design.md "The contract with
// dstack": the supervisor owns `apps[<app id>]` entries and nothing else).
import { open, realpath, stat } from 'node:fs/promises';
import { acquireLock, lockPathFor, type LockOptions } from './lock.ts';
import { writeFileAtomic } from '../fsx/atomic.ts';
import { changedMsOf, changeKey, readStillCurrent, type ReadStamp } from '../fsx/unchanged.ts';
import {
  applyEdit,
  editChanges,
  entryHashes,
  forkAllowlist,
  normalizeHexLikeDstackCli,
  parseAllowlist,
  serializeAllowlist,
  writtenAllowlist,
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
    read: async () => (await loadAllowlist(path, cache)).doc.config(),
    hashesOf: async (appId) => entryHashes((await loadAllowlist(path, cache)).doc, hex('app id', appId))?.map(normalizeHexLikeDstackCli),
    close: async () => {
      closed = true;
      await draining;
    },
  };
}

// The last parse of the file and the text it was parsed from, stamped with the stat taken before
// the read (src/fsx/unchanged.ts: device, inode, size, mtime, mode, owner, links and ctime, trusted
// only for a read that began 1 s after the ctime). A stat that does not prove the parse current
// costs a read, not a parse, when the bytes are the same; after our own write they are what we
// wrote, so the next read needs no parse either (issue 18: at 1 000 apps a parse took ~40 ms, and
// every new app's hash rewrites the file). The bytes are compared as read, not decoded: for a
// second after each write every look reads the file again (its ctime is too recent to trust), and
// beside 5 000 apps each read decoded to a 1 MB string was garbage the collector paid for.
type ParsedCache = { entry: { stamp: ReadStamp; bytes: Buffer; doc: AllowlistDocument } | undefined };

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
  const loaded = await readAllowlist(path, cache);
  const doc = forkAllowlist(loaded.doc);
  // map, not some: every edit must be applied even after the first change.
  if (!edits.map((e) => applyEdit(doc, e)).includes(true)) return;
  const { target, identity } = loaded;
  const text = serializeAllowlist(doc);
  const bytes = Buffer.from(text);
  try {
    await writeFileAtomic(target, bytes, { mode: identity.mode & 0o7777, owner: identity });
  } catch (err) {
    throw writeError(path, 'replacing the file (temp file, fsync, rename, directory fsync)', err);
  }
  // Its stat is not known yet (key ''): the next load reads the file and finds this text.
  cache.entry = { stamp: { key: '', readStartedMs: 0 }, bytes, doc: writtenAllowlist(doc, text) };
  deps.onWrite?.({ path, edits: edits.length });
}

// The file's parse: the cached one when a stat of the path proves it current (one system call,
// as each of a resync's thousands of reconciles asks), else as readAllowlist gives it.
async function loadAllowlist(path: string, cache: ParsedCache): Promise<{ doc: AllowlistDocument }> {
  const entry = cache.entry;
  if (entry !== undefined) {
    const st = await stat(path, { bigint: true }).catch(() => undefined);
    if (st !== undefined && readStillCurrent(entry.stamp, changeKey(st), changedMsOf(st))) return entry;
  }
  return readAllowlist(path, cache);
}

// Read the file and parse it, unless the cache holds this very version or text. `target`
// resolves symlinks so the rename replaces the real file, not the link; `identity` is taken from
// the descriptor we read, so it belongs to the same inode.
async function readAllowlist(path: string, cache: ParsedCache): Promise<{ doc: AllowlistDocument; target: string; identity: FileIdentity }> {
  let target: string;
  let bytes: Buffer | undefined;
  let identity: FileIdentity;
  let stamp: ReadStamp;
  try {
    target = await realpath(path);
    const file = await open(target, 'r');
    try {
      const st = await file.stat({ bigint: true });
      identity = { mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid) };
      stamp = { key: changeKey(st), readStartedMs: Date.now() };
      const last = cache.entry;
      if (last === undefined || !readStillCurrent(last.stamp, stamp.key, changedMsOf(st))) bytes = await file.readFile();
    } finally {
      await file.close();
    }
  } catch (err) {
    throw isNotFound(err) ? missingFileError(path, err) : readError(path, err);
  }
  const last = cache.entry;
  if (bytes !== undefined) cache.entry = { stamp, bytes, doc: last?.bytes.equals(bytes) ? last.doc : parseAllowlist(path, bytes.toString('utf8')) };
  return { doc: (cache.entry as { doc: AllowlistDocument }).doc, target, identity };
}

function isNotFound(err: unknown): boolean {
  return err instanceof Error && 'code' in err && err.code === 'ENOENT';
}
