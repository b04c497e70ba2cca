// File writes of the init steps: atomic (temp + fsync + rename + directory fsync), so a crash
// never leaves a torn vmm.toml or auth-config.json, and skipped when nothing would change, so
// a re-run on a healthy host writes nothing.
import { open, readFile, rename, rm, mkdir, chmod, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

// Read a UTF-8 file, or undefined when it does not exist (any other error is thrown).
export async function readFileIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

// True for the ENOENT a missing path raises.
export function isNotFound(err: unknown): boolean {
  return err instanceof Error && 'code' in err && err.code === 'ENOENT';
}

// Replace `path` with `data` atomically; the file gets `mode` whatever the umask.
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temp, 'wx', mode);
    try {
      await handle.writeFile(data);
      await handle.chmod(mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  await syncDir(dir);
}

// Write `data` unless the file already holds exactly it with `mode`; returns whether it wrote.
export async function writeIfChanged(path: string, data: string, mode = 0o644): Promise<boolean> {
  const current = await readFileIfExists(path);
  if (current === data) {
    if (((await stat(path)).mode & 0o777) === mode) return false;
    await chmod(path, mode);
    return true;
  }
  await writeFileAtomic(path, data, mode);
  return true;
}

// fsync the directory so the rename itself survives a power cut.
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
