// When a file's stat proves that an earlier read of it still stands, so the read can be kept
// instead of redone (issue 18: the scanner, NAME.env and the state records keep their reads).
import type { BigIntStats } from 'node:fs';

// How long after a file's last change (ctime) a read must have started for the stat to stand
// for it. Timestamps come from a coarse clock (1-10 ms ticks), so a write just after a read
// can leave size, mtime and ctime as they were, and ext4 hands a freed inode number out again:
// such "racy" reads are redone until one comes well after the change, as git does with its
// index (the allowlist's same-size rewrite, found by the soak, was this).
const RACY_MS = 1000;

// Everything a write, rename over, chmod, chown or link changes: device and inode (a new file),
// size, mtime, mode, owner, link count. nlink is in it so that a hard link made between a check
// and a read is caught.
export function statKey(st: BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.mode}:${st.uid}:${st.nlink}`;
}

// statKey with the ctime, which the kernel sets on every change and nobody can set back: what a
// read is kept by.
export function changeKey(st: BigIntStats): string {
  return `${statKey(st)}:${st.ctimeNs}`;
}

// A read, stamped with the key of the stat taken before it and the wall time it started.
export type ReadStamp = { key: string; readStartedMs: number };

// True when `earlier` stands for the file whose key is now `key` and whose last change (ctime,
// wall ms) was `changedMs`: same key, and read late enough after that change.
export function readStillCurrent(earlier: ReadStamp, key: string, changedMs: number): boolean {
  return earlier.key === key && earlier.readStartedMs - changedMs >= RACY_MS;
}

// A stat's ctime in wall ms.
export function changedMsOf(st: BigIntStats): number {
  return Number(st.ctimeNs / 1_000_000n);
}
