import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

// Temp files are hidden and carry this marker, so readers that list the directory skip them and
// a crash between write and rename leaves something removeStaleTemps can recognise.
const TEMP_MARK = '.tmp-';

function isTempName(name: string): boolean {
  return name.startsWith('.') && name.includes(TEMP_MARK);
}

// fsync a directory so a rename or unlink inside it survives a power cut, not just a crash.
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

// Replace `path` with `data` so that a reader (or a restart after kill -9 or power loss) sees
// either the old file or the new one, never a mix: temp file in the same directory, fsync, rename
// over the target, fsync the directory.
// `owner` gives the new file that uid/gid (a root writer keeping a file another user reads).
// `exclusive` never replaces: the temp file is hard-linked to `path` instead of renamed over it,
// so when `path` already exists the write fails with EEXIST and the file is left as it was (a
// value generated once, such as the gateway's secrets, is never overwritten by a second writer).
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: { mode?: number; owner?: { uid: number; gid: number }; exclusive?: boolean } = {},
): Promise<void> {
  const mode = options.mode ?? 0o644;
  const temp = join(dirname(path), `.${basename(path)}${TEMP_MARK}${process.pid}-${randomBytes(4).toString('hex')}`);
  const handle = await open(temp, 'wx', mode);
  try {
    try {
      await handle.writeFile(data);
      if (options.owner) await handle.chown(options.owner.uid, options.owner.gid);
      // The open mode went through the umask (and chown may clear set-id bits); the caller asked
      // for exactly `mode`.
      await handle.chmod(mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (options.exclusive === true) {
      await link(temp, path);
      // The file is in place; a temp name left behind is what removeStaleTemps is for.
      await unlink(temp).catch(() => undefined);
    } else {
      await rename(temp, path);
    }
  } catch (err) {
    // Best effort: the write already failed and that error is the one worth reporting.
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  await syncDir(dirname(path));
}

// A 0600 file that is made once and never replaced (a host's key, the gateway's secrets): its
// directory is made (0700) if missing, and `text` written atomically unless the file exists.
// False when another writer came first: theirs is the file.
export async function writeFileOnce(file: string, text: string): Promise<boolean> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  try {
    await writeFileAtomic(file, text, { mode: 0o600, exclusive: true });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

// Remove temp files a crashed writeFileAtomic left in `dir`; returns the names removed. Call it
// only while no write into `dir` is in flight (at start-up), or it deletes a live temp file.
export async function removeStaleTemps(dir: string): Promise<string[]> {
  const stale = (await readdir(dir)).filter(isTempName);
  for (const name of stale) {
    await unlink(join(dir, name)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }
  return stale;
}
