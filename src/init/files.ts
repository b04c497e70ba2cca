// File writes of the init steps: atomic (src/fsx/atomic.ts), so a crash never leaves a torn
// vmm.toml or auth-config.json, and skipped when nothing would change, so a re-run on a
// healthy host writes nothing.
import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../fsx/atomic.ts';

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

// Write `data` unless the file already holds exactly it with the wanted mode; returns whether it
// wrote. `mode` undefined = keep the mode of the file it replaces (0644 for a new file), so an
// operator's chmod survives a re-render.
export async function writeIfChanged(path: string, data: string | Uint8Array, mode?: number): Promise<boolean> {
  const current = await readFile(path).catch((err: unknown) => {
    if (isNotFound(err)) return undefined;
    throw err;
  });
  const currentMode = current === undefined ? undefined : (await stat(path)).mode & 0o777;
  const wanted = mode ?? currentMode ?? 0o644;
  if (current !== undefined && current.equals(typeof data === 'string' ? Buffer.from(data) : data)) {
    if (currentMode === wanted) return false;
    await chmod(path, wanted);
    return true;
  }
  await mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, data, { mode: wanted });
  return true;
}
