// A concurrent reader of auth-config.json, standing in for auth-simple (which re-reads the file on
// every boot request): on every change in the file's directory it reads the file and validates
// it. A torn or invalid read is what an atomic writer must never allow. It also counts the writes:
// each atomic replace creates one uniquely named temp file beside the target.
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { AuthConfigSchema } from '../../src/auth/schema.ts';

// What the reader saw so far.
export type AuthReadStats = {
  reads: number;
  // Reads that were not valid JSON of the auth-simple schema, with what was wrong.
  invalid: Array<{ at: number; problem: string }>;
  // Atomic replaces of the file (distinct temp names created beside it).
  writes: number;
};

export type AuthReader = {
  stats(): AuthReadStats;
  // Stop watching; resolves after the read in flight.
  close(): Promise<void>;
};

// Watch `path` and validate it on every change until close().
export function startAuthReader(path: string): AuthReader {
  const temps = new Set<string>();
  const stats: AuthReadStats = { reads: 0, invalid: [], writes: 0 };
  const target = basename(path);
  const tempPrefix = `.${target}.tmp-`;
  let reading: Promise<void> | undefined;
  let again = false;

  const readOnce = async (): Promise<void> => {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      // An atomic writer never lets the file vanish, so ENOENT counts as a bad read too.
      stats.invalid.push({ at: Date.now(), problem: `unreadable: ${(err as Error).message}` });
      return;
    }
    stats.reads += 1;
    try {
      AuthConfigSchema.parse(JSON.parse(text));
    } catch (err) {
      stats.invalid.push({ at: Date.now(), problem: `${(err as Error).message.slice(0, 200)} in ${JSON.stringify(text.slice(0, 120))}` });
    }
  };

  // One read at a time; changes during a read cause exactly one more.
  const read = (): void => {
    if (reading) {
      again = true;
      return;
    }
    reading = readOnce().finally(() => {
      reading = undefined;
      if (again) {
        again = false;
        read();
      }
    });
  };

  const watcher: FSWatcher = watch(dirname(path), (_event, name) => {
    if (name === null) return read();
    if (name.startsWith(tempPrefix) && !temps.has(name)) {
      temps.add(name);
      stats.writes += 1;
    }
    if (name === target) read();
  });
  read();

  return {
    stats: () => ({ ...stats, invalid: [...stats.invalid] }),
    async close() {
      watcher.close();
      await reading;
    },
  };
}
