// Replace a file so that a concurrent reader (auth-simple re-reads on every request) sees either
// the old bytes or the new ones, never a torn file: auth-simple treats invalid JSON as deny-all.
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { writeError } from './errors.ts';

// Mode bits and owner to give the new file: those of the file it replaces.
export type FileIdentity = { mode: number; uid: number; gid: number };

// Write `text` to a unique temp file beside `path`, fsync it, rename it over `path`, fsync the
// directory so the rename itself survives a crash. Keeps `identity`'s mode and owner: a root
// writer must not turn a file auth-simple's user could read into one it cannot.
export async function writeFileAtomic(path: string, text: string, identity: FileIdentity): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomUUID()}.tmp`);
  let step = 'creating the temp file';
  try {
    const file = await open(temp, 'wx', identity.mode & 0o7777);
    try {
      step = 'writing the temp file';
      await file.writeFile(text, 'utf8');
      step = 'setting mode and owner of the temp file';
      await keepIdentity(file, identity);
      step = 'syncing the temp file';
      await file.sync();
    } finally {
      await file.close();
    }
    step = 'renaming the temp file over the allowlist';
    await rename(temp, path);
  } catch (err) {
    // Best effort: the temp file may never have been created; the original error is the report.
    await unlink(temp).catch(() => undefined);
    throw writeError(path, step, err);
  }
  await syncDirectory(dir).catch((err: unknown) => {
    throw writeError(path, 'syncing the directory after the rename', err);
  });
}

async function keepIdentity(file: FileHandle, identity: FileIdentity): Promise<void> {
  const current = await file.stat();
  if (current.uid !== identity.uid || current.gid !== identity.gid) await file.chown(identity.uid, identity.gid);
  // After chown, which may clear set-id bits; and open()'s mode was filtered by the umask.
  await file.chmod(identity.mode & 0o7777);
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
