import type { BigIntStats } from 'node:fs';
import { mkdir, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import * as z from 'zod';
import { APP_NAME_PATTERN } from '../app/name.ts';
import { SupervisorError } from '../errors.ts';
import { removeStaleTemps, syncDir, writeFileAtomic } from '../fsx/atomic.ts';
import { changedMsOf, changeKey, readStillCurrent, type ReadStamp } from '../fsx/unchanged.ts';
import { inChunks, type Pace } from '../fsx/in-chunks.ts';
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
  // stop the other apps. The same object is given again while nothing changed: not to be edited. Only a directory that cannot be listed throws. `recheck` false (an event
  // pass) answers from memory, the records as last loaded or written by this store, with no
  // system call once one full load was made: records change by our own writes, and what anyone
  // else does to them (a file moved aside) is found by the next full load, every resync, whose
  // each chunk of reads waits for `pace`.
  loadAll(options?: { recheck: boolean; pace?: Pace }): Promise<LoadedRecords>;
  // App `name` as the memory loadAll answers from knows it (no system call): its record, why its
  // file cannot be read, or undefined for none.
  peek(name: string): { record: AppRecord } | { unreadable: UnreadableRecord } | undefined;
  // The apps whose entry in that memory changed since the last call (a load, a write, a
  // removal): an event pass redoes only those (issue 18).
  takeChanged(): Set<string>;
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

// What the store knows of one record file: its record or why it cannot be used, stamped with
// the stat taken before the read (key '' after our own write: content known, stat not yet).
type Known = ReadStamp & ({ record: AppRecord } | { error: StateError });

// Open (creating if needed) the record store in `stateDir`, after removing temp files that a
// crash in the middle of a write left behind. `wallNow` stamps reads (src/fsx/unchanged.ts).
export async function openStateStore(stateDir: string, options: { wallNow?: () => number } = {}): Promise<StateStore> {
  const { wallNow = Date.now } = options;
  const dir = join(stateDir, 'apps');
  const fileOf = (name: string) => {
    if (!APP_NAME_PATTERN.test(name)) throw new StateError('STATE_INVALID', `${JSON.stringify(name)} is not an app name; no record file for it`);
    return join(dir, `${name}.json`);
  };
  const ioError = (file: string, step: string, err: unknown) =>
    new StateError('STATE_IO', `${file}: cannot ${step} the state record (${errnoOf(err) ?? String(err)}); check the state directory`, err);
  const io = (file: string, step: string) => (err: unknown) => {
    throw ioError(file, step, err);
  };
  await mkdir(dir, { recursive: true, mode: 0o700 }).catch(io(dir, 'create the directory of'));
  await removeStaleTemps(dir).catch(io(dir, 'clean up temp files of'));

  // Issue 18: every record as last read or written, so an event pass loads none from disk.
  const known = new Map<string, Known>();
  let primed = false;
  // Bumped by every write of a record, before and after it: a read that overlapped a write of
  // its record may have seen the file before the write, and is not kept.
  const writes = new Map<string, number>();
  let writeCount = 0;
  const bump = (name: string) => writes.set(name, ++writeCount);

  // The last view(), shared by its callers until `known` changes: an event pass asks for it, and
  // building it sorted every name (5 000 beside 5 000 apps) each time (issue 18).
  let lastView: LoadedRecords | undefined;
  let changed = new Set<string>();
  const remember = (name: string, k: Known): void => {
    known.set(name, k);
    lastView = undefined;
    changed.add(name);
  };
  const forget = (name: string): void => {
    if (!known.delete(name)) return;
    lastView = undefined;
    changed.add(name);
  };
  const unreadableOf = (name: string, error: StateError): UnreadableRecord => ({ name, file: fileOf(name), error });

  const outcome = (k: Known): AppRecord => {
    if ('error' in k) throw k.error;
    return k.record;
  };

  async function load(name: string): Promise<AppRecord | undefined> {
    const file = fileOf(name);
    const before = writes.get(name);
    const keep = (k: Known | undefined): void => {
      if (writes.get(name) !== before) return;
      if (k === undefined) forget(name);
      else remember(name, k);
    };
    let st: BigIntStats;
    try {
      st = await stat(file, { bigint: true });
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') {
        keep(undefined);
        return undefined;
      }
      const error = ioError(file, 'stat', err);
      keep({ key: '', readStartedMs: 0, error });
      throw error;
    }
    const key = changeKey(st);
    const last = known.get(name);
    if (last !== undefined && readStillCurrent(last, key, changedMsOf(st))) return outcome(last);
    const readStartedMs = wallNow();
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') {
        keep(undefined);
        return undefined;
      }
      const error = ioError(file, 'read', err);
      keep({ key: '', readStartedMs, error });
      throw error;
    }
    let read: Known;
    try {
      read = { key, readStartedMs, record: parseRecord(file, name, text) };
    } catch (err) {
      if (!(err instanceof StateError)) throw err;
      read = { key, readStartedMs, error: err };
    }
    keep(read);
    return outcome(read);
  }

  // The records and unreadable files as known now, sorted by name.
  function view(): LoadedRecords {
    if (lastView !== undefined) return lastView;
    const loaded: LoadedRecords = { records: [], unreadable: [] };
    for (const name of [...known.keys()].sort()) {
      const k = known.get(name) as Known;
      if ('error' in k) loaded.unreadable.push(unreadableOf(name, k.error));
      else loaded.records.push(k.record);
    }
    lastView = loaded;
    return loaded;
  }

  async function loadAll(options: { recheck: boolean; pace?: Pace } = { recheck: true }): Promise<LoadedRecords> {
    if (primed && !options.recheck) return view();
    const since = writeCount;
    const names = (await readdir(dir).catch(io(dir, 'list')))
      .map((f) => /^(.+)\.json$/.exec(f)?.[1])
      .filter((n): n is string => n !== undefined && APP_NAME_PATTERN.test(n));
    // A record that cannot be used is kept as such by load(); only other errors stop the load.
    await inChunks(names, (name) =>
      load(name).then(
        () => undefined,
        (err: unknown) => {
          if (!(err instanceof StateError)) throw err;
        },
      ),
      options.pace,
    );
    // A record not listed is gone, unless it was written since the listing began.
    const listed = new Set(names);
    for (const name of known.keys()) if (!listed.has(name) && (writes.get(name) ?? 0) <= since) forget(name);
    primed = true;
    return view();
  }

  async function save(record: AppRecord): Promise<void> {
    const file = fileOf(record.name);
    const parsed = AppRecordSchema.safeParse(record);
    if (!parsed.success) {
      throw new StateError('STATE_INVALID', `${file}: refusing to save an invalid record for app "${record.name}" (${describeIssues(parsed.error)})`);
    }
    const text = `${JSON.stringify({ version: STORED_VERSION, ...parsed.data }, null, 2)}\n`;
    bump(record.name);
    await writeFileAtomic(file, text, { mode: 0o600 })
      .catch((err: unknown) => {
        unsure(record.name);
        throw ioError(file, 'write', err);
      })
      .finally(() => bump(record.name));
    // As a load would give it back; its stat is taken by the next load.
    remember(record.name, { key: '', readStartedMs: 0, record: parseRecord(file, record.name, text) });
  }

  // A write failed, so which version the file holds is not known: the next load reads it (an
  // event pass keeps answering with the last known one, the file's most likely content).
  function unsure(name: string): void {
    const last = known.get(name);
    if (last !== undefined) remember(name, { ...last, key: '' });
  }

  async function remove(name: string): Promise<void> {
    const file = fileOf(name);
    bump(name);
    const removed = await unlink(file)
      .then(
        () => true,
        (err: unknown) => {
          if (errnoOf(err) === 'ENOENT') return false;
          unsure(name);
          throw ioError(file, 'remove', err);
        },
      )
      .finally(() => bump(name));
    forget(name);
    if (removed) await syncDir(dir).catch(io(dir, 'sync'));
  }

  function peek(name: string): { record: AppRecord } | { unreadable: UnreadableRecord } | undefined {
    const k = known.get(name);
    if (k === undefined) return undefined;
    return 'error' in k ? { unreadable: unreadableOf(name, k.error) } : { record: k.record };
  }

  function takeChanged(): Set<string> {
    const taken = changed;
    changed = new Set();
    return taken;
  }

  return { dir, load, loadAll, peek, takeChanged, save, remove };
}
