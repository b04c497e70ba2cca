import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { inChunks, type Pace } from '../fsx/in-chunks.ts';
import { classifyEntry, describeMisnamed, type EntryClass } from './classify.ts';
import { inspectCandidate, readStands, type Look, type RefusalCode } from './inspect.ts';

// How to scan apps.d. `now` is the injected clock (ms); `settleMs` is Q of docs/apps-dir.md rule 5.
export type ScanOptions = {
  dir: string;
  owner: number;
  maxFileBytes: number;
  settleMs: number;
  now: () => number;
  // Wall time (ms), compared with file ctimes to tell when an earlier read may be reused.
  wallNow?: () => number;
};

// One app identity present in the directory. Every state means "the file is there": only an
// identity missing from `entries` can be a teardown candidate (and then only after rule 7).
export type ScanEntry =
  | { name: string; state: 'settled'; file: string; bytes: Buffer; sha256: string; size: number; mtimeMs: number; ino: number }
  | { name: string; state: 'unsettled'; file: string; settleAt: number }
  | { name: string; state: 'refused'; file: string; code: RefusalCode; message: string }
  | { name: string; state: 'conflict'; files: string[]; code: 'APP_CONFLICT'; message: string };

// A name that looks like an app but is not valid; `firstSeen` is true on the first scan that
// finds it, so the caller warns once (rule 2), not on every scan.
export type Misnamed = { file: string; message: string; firstSeen: boolean };

// Why apps.d itself could not be listed (rule 12): never to be read as "no apps".
// APPS_DIR_UNSAFE: writable by others than [apps] owner, who could add, replace or delete apps
// (the directory-level twin of rule 4, as sshd's StrictModes checks directories too).
export type DirErrorCode = 'APPS_DIR_MISSING' | 'APPS_DIR_NOT_DIR' | 'APPS_DIR_UNREADABLE' | 'APPS_DIR_UNSAFE';

// The outcome of one scan. `replaced`: apps.d has a different device or inode than at the last
// successful scan (rule 11), e.g. it was unmounted, remounted or renamed over. `entries` are in
// the directory's order (by file name) and the array is never changed once returned; an entry no
// scan looked at again is the very object the last scan gave.
export type ScanResult =
  | {
      kind: 'listing';
      at: number;
      dir: { dev: number; ino: number };
      replaced: boolean;
      entries: ScanEntry[];
      unsettled: string[];
      nextSettleAt: number | null;
      misnamed: Misnamed[];
    }
  | { kind: 'dir-error'; at: number; code: DirErrorCode; message: string };

// Which entries a scan looks at (issue 18). `all`: a full scan, which lists apps.d and stats every
// candidate (a resync, start-up, a watcher fault, a reload). Otherwise an event pass: apps.d is
// not listed, and the scan starts from the last one's entries and looks again only at the
// watcher's hints, the entry names it saw an event for since the last scan, and at the candidates
// that were still settling, symlinks or unreadable then. So an event pass costs O(changed
// entries), and a file created, changed or deleted with no event is found by the next full scan
// (the watcher sends an unnamed hint, a full recheck, when it overflows or faults).
export type Recheck = { all: true } | { all: false; names: ReadonlySet<string> };

// Every candidate looked at again.
export const RECHECK_ALL: Recheck = { all: true };

// A scanner keeps the fingerprints of earlier scans, which is what settling is measured against,
// its last look at each file, and the last scan's entries, which an event pass starts from.
// `differences` (issue 18) is a resync's look at apps.d outside the serialised pass: the entry
// names an event pass hinted with them must look at again to give what a full scan would, by a
// fresh listing and a stat of each candidate (each chunk of stats after `pace`), with no read;
// undefined when it cannot tell (no scan yet, or apps.d cannot be listed), so a full scan is due.
// It only reads, so it may run while scans do (it waits for the one under way to finish first); a
// name too many only costs the event pass a look.
export type Scanner = {
  scan: (recheck?: Recheck) => Promise<ScanResult>;
  differences: (pace?: Pace) => Promise<ReadonlySet<string> | undefined>;
};

type Seen = { fingerprint: string; since: number };

// The last look at a file; `final`: it gave a settled or refused entry, not a settling one.
type Kept = Look & { final: boolean };

const NO_HINTS: ReadonlySet<string> = new Set();

function dirError(dir: string, at: number, code: string): ScanResult {
  const [kind, what]: [DirErrorCode, string] =
    code === 'ENOENT'
      ? ['APPS_DIR_MISSING', 'does not exist (missing or not mounted)']
      : code === 'ENOTDIR'
        ? ['APPS_DIR_NOT_DIR', 'is not a directory']
        : ['APPS_DIR_UNREADABLE', `cannot be listed (${code})`];
  return { kind: 'dir-error', at, code: kind, message: `${dir}: ${what}; no app is deployed or torn down until it can be listed again` };
}

function errnoOf(err: unknown): string {
  return err instanceof Error && 'code' in err ? String(err.code) : String(err);
}

// Why apps.d is unsafe to act on, or null: owned by another uid, or group/world-writable.
function unsafeDir(dir: string, st: { uid: number; mode: number }, owner: number, at: number): ScanResult | null {
  const problem =
    st.uid !== owner
      ? `is owned by uid ${st.uid}, not ${owner} ([apps] owner); run: chown ${owner} ${dir}`
      : (st.mode & 0o022) !== 0
        ? `is group- or world-writable (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}), so others could add, replace or delete apps; run: chmod go-w ${dir}`
        : null;
  return problem === null ? null : { kind: 'dir-error', at, code: 'APPS_DIR_UNSAFE', message: `${dir}: ${problem}; no app is deployed or torn down until then` };
}

function conflictEntry(dir: string, name: string, files: string[]): ScanEntry {
  const paths = files.map((f) => join(dir, f)).join(' and ');
  return { name, state: 'conflict', files, code: 'APP_CONFLICT', message: `${paths} both define app "${name}"; neither is acted on until one of them is removed` };
}

const sameFiles = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((f, i) => f === b[i]);

// An entry's place in the directory's order: its first file name.
const keyOf = (e: ScanEntry): string => (e.state === 'conflict' ? (e.files[0] as string) : e.file);

// Where the entry whose key is `key` is, or would go, in `entries` (sorted by key, keys unique).
function placeOf(entries: readonly ScanEntry[], key: string): number {
  let [lo, hi] = [0, entries.length];
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keyOf(entries[mid] as ScanEntry) < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// A scanner for `options.dir`. A full scan lists the directory and looks at every candidate; an
// event pass looks at the ones `recheck` names and those still settling (see Recheck). A look
// reuses the last read of a file whose stat shows no change since, and a file is reported
// settled only once its fingerprint has stayed the same for settleMs (files found at start-up
// too). It only reads: no file, watch or timer is touched.
export function createScanner(options: ScanOptions): Scanner {
  const { dir, settleMs, now, wallNow = Date.now } = options;
  const limits = { owner: options.owner, maxFileBytes: options.maxFileBytes };
  // The state of the last scan, changed in place for the entries a scan looks at (issue 18).
  // `files`: each app name's candidate files, sorted (two or more: a conflict, rule 3).
  const files = new Map<string, string[]>();
  const current = new Map<string, ScanEntry>();
  const settling = new Map<string, Extract<ScanEntry, { state: 'unsettled' }>>();
  const seen = new Map<string, Seen>();
  const looks = new Map<string, Kept>();
  // The candidate files an event pass looks at with no event for them (not both lasting and
  // final: settling, symlinked, unreadable …), each with its app's name.
  const relook = new Map<string, string>();
  // The misnamed entries present, each with its warning.
  const misnamed = new Map<string, string>();
  let entries: ScanEntry[] = [];
  let lastDir: { dev: number; ino: number } | null = null;
  // When the last listing was taken: a file that is new or changed since then changed after it.
  let lastAt: number | null = null;
  // The last scan started (scans come one at a time): differences() waits for the one under way.
  let scanning: Promise<unknown> = Promise.resolve();

  async function openDir(at: number): Promise<{ realDir: string; id: { dev: number; ino: number } } | ScanResult> {
    try {
      const st = await stat(dir);
      if (!st.isDirectory()) return dirError(dir, at, 'ENOTDIR');
      const unsafe = unsafeDir(dir, st, options.owner, at);
      if (unsafe) return unsafe;
      return { realDir: await realpath(dir), id: { dev: st.dev, ino: st.ino } };
    } catch (err) {
      return dirError(dir, at, errnoOf(err));
    }
  }

  // Whether `file` is an entry of apps.d, as a listing would say: an error but ENOENT means it is.
  async function present(file: string): Promise<boolean> {
    return lstat(join(dir, file)).then(
      () => true,
      (err: unknown) => errnoOf(err) !== 'ENOENT',
    );
  }

  // Drop what was kept of a candidate file: it went, or it is one of a conflict's files.
  function forgetLooks(file: string): void {
    seen.delete(file);
    looks.delete(file);
    relook.delete(file);
  }

  // App `name` now has `next` (sorted) as its files: what was kept of any other goes.
  function setFiles(name: string, next: string[]): void {
    for (const file of files.get(name) ?? []) if (!next.includes(file)) forgetLooks(file);
    if (next.length === 0) files.delete(name);
    else files.set(name, next);
  }

  // Misnamed entry `file` is there (`c`) or not; one new to this scan goes into `fresh`, so it is
  // warned about once (rule 2).
  function noteMisnamed(file: string, c: Extract<EntryClass, { kind: 'misnamed' }> | undefined, fresh: Set<string>): void {
    if (c === undefined) misnamed.delete(file);
    else if (!misnamed.has(file)) {
      misnamed.set(file, describeMisnamed(join(dir, file), c));
      fresh.add(file);
    }
  }

  // A full scan's listing: each app name with its files, in the directory's order (sorted); the
  // misnamed entries become those listed.
  function listByName(names: string[], fresh: Set<string>): Map<string, string[]> {
    const byName = new Map<string, string[]>();
    const named = new Set<string>();
    for (const file of names.sort()) {
      const c = classifyEntry(file);
      if (c.kind === 'app') byName.set(c.name, [...(byName.get(c.name) ?? []), file]);
      if (c.kind !== 'misnamed') continue;
      noteMisnamed(file, c, fresh);
      named.add(file);
    }
    for (const file of misnamed.keys()) if (!named.has(file)) misnamed.delete(file);
    return byName;
  }

  function scan(recheck: Recheck = RECHECK_ALL): Promise<ScanResult> {
    const run = scanOnce(recheck);
    scanning = run.catch(() => undefined);
    return run;
  }

  async function scanOnce(recheck: Recheck): Promise<ScanResult> {
    const at = now();
    const opened = await openDir(at);
    if ('kind' in opened) return opened;
    const { realDir, id } = opened;
    const replaced = lastDir !== null && (lastDir.dev !== id.dev || lastDir.ino !== id.ino);
    // Another directory under the same path, or no scan to start from: every entry is looked at.
    const all = recheck.all || replaced || lastAt === null;
    const hints = recheck.all ? NO_HINTS : recheck.names;
    // The app names whose files are looked at, and the misnamed entries new to this scan.
    const touched = new Set<string>();
    const fresh = new Set<string>();
    // A full scan's listing, each app name with its files in the directory's order.
    let listed: Map<string, string[]> | undefined;
    if (all) {
      try {
        listed = listByName(await readdir(dir), fresh);
      } catch (err) {
        return dirError(dir, at, errnoOf(err));
      }
    }
    lastDir = id;

    // What app `name`'s files make it now: nothing, a conflict, or what a look at its file says.
    async function entryOf(name: string): Promise<ScanEntry | undefined> {
      const list = files.get(name);
      const prev = current.get(name);
      const file = list?.[0];
      if (list === undefined || file === undefined) return undefined;
      if (list.length > 1) {
        for (const f of list) forgetLooks(f);
        return prev?.state === 'conflict' && sameFiles(prev.files, list) ? prev : conflictEntry(dir, name, list);
      }
      const last = looks.get(file);
      const look =
        !all && last !== undefined && last.lasting && last.final && !hints.has(file)
          ? last
          : await inspectCandidate(dir, realDir, file, limits, last?.read, wallNow);
      const obs = look.observation;
      if (obs.kind === 'gone') {
        forgetLooks(file);
        // Gone as it was looked at, yet listed: looked at again next pass, as a new file is.
        if (listed !== undefined || (await present(file))) relook.set(file, name);
        else setFiles(name, []);
        return undefined;
      }
      const prevSeen = seen.get(file);
      const fingerprint = obs.kind === 'changing' ? null : obs.fingerprint;
      // A new look starts the window when the kernel says the file last changed (its ctime), not
      // when we happened to look, which a watcher's debounce makes later; never before the last
      // listing (it showed another state), nor after now. At start-up there is no last listing.
      const changed = obs.kind === 'read' && lastAt !== null ? Math.min(at, Math.max(lastAt, obs.changedMs)) : at;
      const since = prevSeen !== undefined && fingerprint !== null && prevSeen.fingerprint === fingerprint ? prevSeen.since : changed;
      if (fingerprint !== null) seen.set(file, { fingerprint, since });
      else seen.delete(file);
      const final = obs.kind !== 'changing' && at - since >= settleMs;
      looks.set(file, { ...look, final });
      if (look.lasting && final) relook.delete(file);
      else relook.set(file, name);
      // The same observation, final then and now: the entry it gave stands (its identity too).
      if (final && last?.final === true && last.observation === obs && prev !== undefined && prev.state !== 'conflict' && prev.file === file) return prev;
      if (!final) return { name, state: 'unsettled', file, settleAt: since + settleMs };
      if (obs.kind === 'refused') return { name, state: 'refused', file, code: obs.code, message: obs.message };
      const { bytes, sha256, size, mtimeMs, ino } = obs;
      return { name, state: 'settled', file, bytes, sha256, size, mtimeMs, ino };
    }

    if (listed !== undefined) {
      for (const name of files.keys()) if (!listed.has(name)) setFiles(name, []);
      for (const [name, list] of listed) setFiles(name, list);
      for (const name of current.keys()) touched.add(name);
      for (const name of listed.keys()) touched.add(name);
    } else {
      // Each hinted entry is there or not, as a listing would have said; its app is looked at.
      await inChunks([...hints], async (file) => {
        const c = classifyEntry(file);
        if (c.kind === 'ignored') return;
        const there = await present(file);
        if (c.kind === 'misnamed') noteMisnamed(file, there ? c : undefined, fresh);
        if (c.kind !== 'app') return;
        const list = files.get(c.name) ?? [];
        if (there !== list.includes(file)) setFiles(c.name, there ? [...list, file].sort() : list.filter((f) => f !== file));
        touched.add(c.name);
      });
      for (const name of relook.values()) touched.add(name);
    }

    const before = new Map<string, ScanEntry | undefined>();
    await inChunks([...touched], async (name) => {
      before.set(name, current.get(name));
      const next = await entryOf(name);
      if (next === undefined) current.delete(name);
      else current.set(name, next);
      if (next?.state === 'unsettled') settling.set(name, next);
      else settling.delete(name);
    });

    if (listed !== undefined) {
      // The directory's order: an app where its first file is listed.
      const ordered: ScanEntry[] = [];
      for (const name of listed.keys()) {
        const e = current.get(name);
        if (e !== undefined) ordered.push(e);
      }
      entries = ordered;
    } else {
      // Copied before the first change: the last scan's array stays as it was returned.
      let next = entries;
      for (const [name, prev] of before) {
        const e = current.get(name);
        if (e === prev) continue;
        if (next === entries) next = entries.slice();
        if (prev !== undefined) next.splice(placeOf(next, keyOf(prev)), 1);
        if (e !== undefined) next.splice(placeOf(next, keyOf(e)), 0, e);
      }
      entries = next;
    }
    lastAt = at;

    const waiting = [...settling.values()].sort((a, b) => (a.file < b.file ? -1 : 1));
    const nextSettleAt = waiting.length === 0 ? null : waiting.reduce((t, e) => Math.min(t, e.settleAt), Infinity);
    const warnings = [...misnamed].sort(([a], [b]) => (a < b ? -1 : 1)).map(([file, message]) => ({ file, message, firstSeen: fresh.has(file) }));
    return { kind: 'listing', at, dir: id, replaced, entries, unsettled: waiting.map((e) => e.name), nextSettleAt, misnamed: warnings };
  }

  async function differences(pace?: Pace): Promise<ReadonlySet<string> | undefined> {
    // A scan under way may have listed or looked before a change this call must see, and would
    // put that in the state after it is compared; every later scan looks after this call.
    await scanning;
    if (lastAt === null) return undefined;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return undefined;
    }
    const listed = new Set(names);
    const differ = new Set<string>();
    // Entries a scan has not taken in: new candidate files, misnamed entries not yet warned about.
    for (const file of names) {
      const c = classifyEntry(file);
      if (c.kind === 'app' ? files.get(c.name)?.includes(file) !== true : c.kind === 'misnamed' && !misnamed.has(file)) differ.add(file);
    }
    for (const file of misnamed.keys()) if (!listed.has(file)) differ.add(file);
    // Candidate files gone, and those whose kept look a stat cannot prove current.
    const proving: string[] = [];
    for (const list of files.values()) {
      for (const file of list) {
        const look = looks.get(file);
        if (!listed.has(file)) differ.add(file);
        // A conflict stands while its files are there, whatever they hold; every event pass looks
        // at a file still settling, symlinked, unreadable or gone (relook).
        else if (list.length > 1 || look?.lasting !== true || !look.final) continue;
        else if (look.read !== undefined) proving.push(file);
        // Refused: no kept read for a stat to prove; such files are few.
        else differ.add(file);
      }
    }
    await inChunks(proving, async (file) => {
      // A look a scan puts in its place meanwhile was taken after this call: if the stat proves
      // the read held now, the file has not changed since, and it proves that look too.
      const read = looks.get(file)?.read;
      if (read === undefined || !(await readStands(dir, file, read))) differ.add(file);
    }, pace);
    return differ;
  }

  return { scan, differences };
}
