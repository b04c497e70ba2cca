// Cross-process exclusive lock on `<path>.lock`, the same flock(2) convention upstream's
// `dstack` CLI uses around its allowlist read-modify-write (dstack-core fsutil.rs
// `lock_exclusive`), so we and the CLI never interleave.
//
// Node has no flock and we ship no native addon. flock(2) locks belong to the open file
// description, not to the process: we open the lock file, hand that same description to
// util-linux `flock` as its fd 3, and it calls flock(3, LOCK_EX). When the child exits our fd
// still refers to the locked description, so the lock stays ours until we close it. Node opens
// files O_CLOEXEC, so no other child we spawn inherits the description and outlives the close.
// node:child_process rather than execa: execa's types only admit the literals 3-9 as a parent
// fd on an extra stdio slot, and the descriptor number here is whatever open() returned.
import { open, type FileHandle } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { lockError, lockTimeoutError } from './errors.ts';

// flock exits with this when --wait runs out; any value it never uses for itself will do.
const TIMEOUT_EXIT_CODE = 75;

// How long to wait for the lock and which flock binary to run.
export type LockOptions = { timeoutMs?: number; flockPath?: string };

// A held lock; release() closes the descriptor, which drops the lock.
export type HeldLock = { lockPath: string; release: () => Promise<void> };

// The lock file guarding `path`: the path with `.lock` appended (not replacing the extension).
export function lockPathFor(path: string): string {
  return `${path}.lock`;
}

// Block until we hold the exclusive lock on `lockPath` (created 0600 if absent).
export async function acquireLock(lockPath: string, options: LockOptions = {}): Promise<HeldLock> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  let handle: FileHandle;
  try {
    handle = await open(lockPath, 'a', 0o600);
  } catch (err) {
    throw lockError(lockPath, err);
  }
  try {
    await runFlock(handle, lockPath, timeoutMs, options.flockPath ?? 'flock');
  } catch (err) {
    await handle.close();
    throw err;
  }
  return { lockPath, release: () => handle.close() };
}

async function runFlock(handle: FileHandle, lockPath: string, timeoutMs: number, flockPath: string): Promise<void> {
  const args = ['--exclusive', '--wait', String(timeoutMs / 1000), '--conflict-exit-code', String(TIMEOUT_EXIT_CODE), '3'];
  const child = spawn(flockPath, args, { stdio: ['ignore', 'ignore', 'pipe', handle.fd] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  // 'close' rather than 'exit' so stderr is complete; a spawn failure (ENOENT) emits 'error'.
  const code = await new Promise<number | string>((resolve, reject) => {
    child.once('error', (err) => reject(lockError(lockPath, err)));
    child.once('close', (exitCode, signal) => resolve(exitCode ?? signal ?? 'unknown'));
  });
  if (code === 0) return;
  if (code === TIMEOUT_EXIT_CODE) throw lockTimeoutError(lockPath, timeoutMs);
  throw lockError(lockPath, stderr.trim() || `flock exited with ${code}`);
}
