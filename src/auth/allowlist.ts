// The supervisor's handle on auth-config.json: register and withdraw compose hashes for the apps
// it deploys, leaving everything else in the file exactly as it was (DESIGN "The contract with
// dstack": the supervisor owns `apps[<app id>]` entries and nothing else).
import { open, realpath } from 'node:fs/promises';
import { acquireLock, lockPathFor, type LockOptions } from './lock.ts';
import { writeFileAtomic } from '../fsx/atomic.ts';
import {
  applyEdit,
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
  read(): Promise<AuthConfig>;
  close(): Promise<void>;
};

type Pending = { edit: AllowlistEdit; resolve: () => void; reject: (err: unknown) => void };

// Open the allowlist at `path`. No I/O happens until the first call, so a missing or invalid
// file is reported per call (AUTH_MISSING / AUTH_INVALID) and never replaced by an empty one.
export function openAllowlist(path: string, deps: AllowlistDeps = {}): Allowlist {
  let queue: Pending[] = [];
  let draining: Promise<void> | undefined;
  let closed = false;

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
      await writeBatch(path, batch, deps);
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
    read: async () => (await loadAllowlist(path)).doc.config,
    close: async () => {
      closed = true;
      await draining;
    },
  };
}

// Settle every edit of the batch with the outcome of its single locked read-modify-write.
async function writeBatch(path: string, batch: Pending[], deps: AllowlistDeps): Promise<void> {
  try {
    const lock = await acquireLock(lockPathFor(path), deps.lock);
    try {
      await editFile(path, batch.map((p) => p.edit), deps);
    } finally {
      await lock.release();
    }
  } catch (err) {
    for (const pending of batch) pending.reject(err);
    return;
  }
  for (const pending of batch) pending.resolve();
}

async function editFile(path: string, edits: AllowlistEdit[], deps: AllowlistDeps): Promise<void> {
  const { doc, target, identity } = await loadAllowlist(path);
  // map, not some: every edit must be applied even after the first change.
  if (!edits.map((e) => applyEdit(doc, e)).includes(true)) return;
  try {
    await writeFileAtomic(target, serializeAllowlist(doc), { mode: identity.mode & 0o7777, owner: identity });
  } catch (err) {
    throw writeError(path, 'replacing the file (temp file, fsync, rename, directory fsync)', err);
  }
  deps.onWrite?.({ path, edits: edits.length });
}

// Read and parse the file. `target` resolves symlinks so the rename replaces the real file, not
// the link; `identity` is taken from the descriptor we read, so it belongs to the same inode.
async function loadAllowlist(path: string): Promise<{ doc: AllowlistDocument; target: string; identity: FileIdentity }> {
  let target: string;
  let text: string;
  let identity: FileIdentity;
  try {
    target = await realpath(path);
    const file = await open(target, 'r');
    try {
      const stat = await file.stat();
      identity = { mode: stat.mode, uid: stat.uid, gid: stat.gid };
      text = await file.readFile('utf8');
    } finally {
      await file.close();
    }
  } catch (err) {
    throw isNotFound(err) ? missingFileError(path, err) : readError(path, err);
  }
  return { doc: parseAllowlist(path, text), target, identity };
}

function isNotFound(err: unknown): boolean {
  return err instanceof Error && 'code' in err && err.code === 'ENOENT';
}
