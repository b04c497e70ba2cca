// Reading a file that guards something (NAME.env, the VMM token) so that what is checked is what
// is read: open without following a symlink and without blocking on a FIFO, check the open
// descriptor's fstat (no race with a rename in between), then read at most a limit.
import { constants, type BigIntStats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

// What opening found: the file and its fstat, no file, or a symlink in its place.
export type GuardedOpen = { kind: 'open'; handle: FileHandle; st: BigIntStats } | { kind: 'missing' } | { kind: 'symlink' };

function errno(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

// Open `path` read-only with O_NOFOLLOW | O_NONBLOCK (a FIFO opens at once and is then seen by
// its fstat) and fstat it; any other error than ENOENT and ELOOP is thrown.
export async function openNoFollow(path: string): Promise<GuardedOpen> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if (errno(err) === 'ENOENT') return { kind: 'missing' };
    if (errno(err) === 'ELOOP') return { kind: 'symlink' };
    throw err;
  }
  try {
    return { kind: 'open', handle, st: await handle.stat({ bigint: true }) };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

// What a file that is not a regular file is, for a message: "a named pipe", "a directory", …
export function describeFileType(st: BigIntStats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a named pipe';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

// How a message or a fix names the owner a file must have: `chown root FILE`, `chown 1000 FILE`.
export function ownerName(uid: number): string {
  return uid === 0 ? 'root' : String(uid);
}

// Read at most `limit` bytes from the start; null if the file holds more (it may have grown
// since its fstat, or be a file whose fstat size says nothing, as in /proc).
export async function readAtMost(handle: FileHandle, limit: number): Promise<Buffer | null> {
  const buf = Buffer.alloc(limit + 1);
  let length = 0;
  let bytesRead: number;
  do {
    ({ bytesRead } = await handle.read(buf, length, buf.length - length, length));
    length += bytesRead;
  } while (bytesRead > 0 && length < buf.length);
  return length > limit ? null : buf.subarray(0, length);
}
