import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { APP_NAME_PATTERN } from '../app/name.ts';
import { SupervisorError } from '../errors.ts';
import { removeStaleTemps, syncDir, writeFileAtomic } from '../fsx/atomic.ts';
import { AppRecordSchema, type AppRecord } from './record.ts';

// On disk a record carries a format version, so a later release can migrate old files instead
// of refusing them; callers never see it.
const STORED_VERSION = 1;
const StoredRecordSchema = AppRecordSchema.extend({ version: z.literal(STORED_VERSION) }).strict();

// A state record could not be read, written or trusted; the message names the file.
// STATE_NEWER: the record was written by a later release (a downgrade), not damaged.
export class StateError extends SupervisorError {
  constructor(code: 'STATE_CORRUPT' | 'STATE_NEWER' | 'STATE_INVALID' | 'STATE_IO', message: string, cause?: unknown) {
    super(code, message, { cause });
    this.name = 'StateError';
  }
}

// A record file that exists but cannot be used: its app is held, the others go on (issue 13).
export type UnreadableRecord = { name: string; file: string; error: StateError };

// Every record of the store, and the files that could not be read (never silently dropped).
export type LoadedRecords = { records: AppRecord[]; unreadable: UnreadableRecord[] };

// Per-app records under `<state_dir>/apps/<name>.json`.
export type StateStore = {
  readonly dir: string;
  // The record of app `name`, or undefined if there is none; an unusable file throws StateError.
  load(name: string): Promise<AppRecord | undefined>;
  // Every record, sorted by name, beside the files that could not be read: one bad file must not
  // stop the other apps. Only a directory that cannot be listed throws.
  loadAll(): Promise<LoadedRecords>;
  // Validate and write one record crash-safely (temp + fsync + rename + directory fsync).
  save(record: AppRecord): Promise<void>;
  // Delete app `name`'s record; a missing record is not an error.
  remove(name: string): Promise<void>;
};

function errnoOf(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(record)'}: ${i.message}`).join('; ');
}

// What the operator does about a record that cannot be used, and what happens meanwhile.
function remedy(file: string): string {
  return (
    `move it aside (mv ${file} ${file}.bad); until then the app is held: nothing is deployed or torn down for it. ` +
    "At the next resync the supervisor finds the app's VM again by name and app id"
  );
}

// A later release that stores another format: say so, rather than calling its record corrupt.
function newerVersionOf(json: unknown): number | undefined {
  if (typeof json !== 'object' || json === null || !('version' in json)) return undefined;
  const { version } = json;
  return typeof version === 'number' && Number.isInteger(version) && version > STORED_VERSION ? version : undefined;
}

// Parse one record file; anything but a valid record for `name` is STATE_CORRUPT, or
// STATE_NEWER for a record of a later format.
function parseRecord(file: string, name: string, text: string): AppRecord {
  const corrupt = (why: string, cause?: unknown) => new StateError('STATE_CORRUPT', `${file}: corrupt state record (${why}); ${remedy(file)}`, cause);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw corrupt('not JSON', err);
  }
  const newer = newerVersionOf(json);
  if (newer !== undefined) {
    throw new StateError(
      'STATE_NEWER',
      `${file}: state record written by a newer dstack-supervisor (version ${newer}; this one reads version ${STORED_VERSION}); ` +
        `install that release again, or ${remedy(file)}`,
    );
  }
  const parsed = StoredRecordSchema.safeParse(json);
  if (!parsed.success) throw corrupt(describeIssues(parsed.error));
  const { version: _version, ...record } = parsed.data;
  if (record.name !== name) throw corrupt(`it names app "${record.name}"`);
  return record;
}

// Open (creating if needed) the record store in `stateDir`, after removing temp files that a
// crash in the middle of a write left behind.
export async function openStateStore(stateDir: string): Promise<StateStore> {
  const dir = join(stateDir, 'apps');
  const fileOf = (name: string) => {
    if (!APP_NAME_PATTERN.test(name)) throw new StateError('STATE_INVALID', `${JSON.stringify(name)} is not an app name; no record file for it`);
    return join(dir, `${name}.json`);
  };
  const io = (file: string, step: string) => (err: unknown) => {
    throw new StateError('STATE_IO', `${file}: cannot ${step} the state record (${errnoOf(err) ?? String(err)}); check the state directory`, err);
  };
  await mkdir(dir, { recursive: true, mode: 0o700 }).catch(io(dir, 'create the directory of'));
  await removeStaleTemps(dir).catch(io(dir, 'clean up temp files of'));

  async function load(name: string): Promise<AppRecord | undefined> {
    const file = fileOf(name);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return undefined;
      return io(file, 'read')(err);
    }
    return parseRecord(file, name, text);
  }

  async function loadAll(): Promise<LoadedRecords> {
    const names = (await readdir(dir).catch(io(dir, 'list')))
      .map((f) => /^(.+)\.json$/.exec(f)?.[1])
      .filter((n): n is string => n !== undefined && APP_NAME_PATTERN.test(n))
      .sort();
    const loaded: LoadedRecords = { records: [], unreadable: [] };
    for (const name of names) {
      try {
        const record = await load(name);
        if (record !== undefined) loaded.records.push(record);
      } catch (err) {
        if (!(err instanceof StateError)) throw err;
        loaded.unreadable.push({ name, file: fileOf(name), error: err });
      }
    }
    return loaded;
  }

  async function save(record: AppRecord): Promise<void> {
    const file = fileOf(record.name);
    const parsed = AppRecordSchema.safeParse(record);
    if (!parsed.success) {
      throw new StateError('STATE_INVALID', `${file}: refusing to save an invalid record for app "${record.name}" (${describeIssues(parsed.error)})`);
    }
    const text = `${JSON.stringify({ version: STORED_VERSION, ...parsed.data }, null, 2)}\n`;
    await writeFileAtomic(file, text, { mode: 0o600 }).catch(io(file, 'write'));
  }

  async function remove(name: string): Promise<void> {
    const file = fileOf(name);
    try {
      await unlink(file);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return;
      io(file, 'remove')(err);
    }
    await syncDir(dir).catch(io(dir, 'sync'));
  }

  return { dir, load, loadAll, save, remove };
}
