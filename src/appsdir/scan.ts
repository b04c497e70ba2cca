import { readdir, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { classifyEntry, describeMisnamed } from './classify.ts';
import { inspectCandidate, type Look, type RefusalCode } from './inspect.ts';

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
// successful scan (rule 11), e.g. it was unmounted, remounted or renamed over.
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

// Which candidates a scan looks at again (issue 18). `all`: every one, each stat'ed (a resync,
// start-up, a watcher fault, a reload). Otherwise the watcher's hints, the entry names it saw an
// event for since the last scan: any other candidate is taken as the last scan saw it, with no
// stat, unless it was new, still settling, a symlink or unreadable then. So an event pass costs
// O(changed files), and an event the watcher missed waits at most until the next `all` scan.
export type Recheck = { all: true } | { all: false; names: ReadonlySet<string> };

// Every candidate looked at again.
export const RECHECK_ALL: Recheck = { all: true };

// A scanner keeps the fingerprints of earlier scans, which is what settling is measured against,
// and its last look at each file.
export type Scanner = { scan: (recheck?: Recheck) => Promise<ScanResult> };

type Seen = { fingerprint: string; since: number };

// The last look at a file; `final`: it gave a settled or refused entry, not a settling one.
type Kept = Look & { final: boolean };

const LOOKS_AT_ONCE = 64;

function dirError(dir: string, at: number, code: string): ScanResult {
  const [kind, what]: [DirErrorCode, string] =
    code === 'ENOENT'
      ? ['APPS_DIR_MISSING', 'does not exist (missing or not mounted)']
      : code === 'ENOTDIR'
        ? ['APPS_DIR_NOT_DIR', 'is not a directory']
        : ['APPS_DIR_UNREADABLE', `cannot be listed (${code})`];
  return { kind: 'dir-error', at, code: kind, message: `${dir}: ${what}; no app is deployed or torn down until it can be listed again` };
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

// A scanner for `options.dir`. Each scan lists the directory, looks at the candidates `recheck`
// names (reusing the last read of a file whose stat shows no change since) and reports each
// settled only once its fingerprint has stayed the same for settleMs (files found at start-up
// too). It only reads: no file, watch or timer is touched.
export function createScanner(options: ScanOptions): Scanner {
  const { dir, settleMs, now, wallNow = Date.now } = options;
  const limits = { owner: options.owner, maxFileBytes: options.maxFileBytes };
  let seen = new Map<string, Seen>();
  let looks = new Map<string, Kept>();
  let warned = new Set<string>();
  let lastDir: { dev: number; ino: number } | null = null;
  // When the last listing was taken: a file that is new or changed since then changed after it.
  let lastAt: number | null = null;

  async function list(at: number): Promise<{ names: string[]; realDir: string; id: { dev: number; ino: number } } | ScanResult> {
    try {
      const st = await stat(dir);
      if (!st.isDirectory()) return dirError(dir, at, 'ENOTDIR');
      const unsafe = unsafeDir(dir, st, options.owner, at);
      if (unsafe) return unsafe;
      const names = await readdir(dir);
      return { names: names.sort(), realDir: await realpath(dir), id: { dev: st.dev, ino: st.ino } };
    } catch (err) {
      return dirError(dir, at, err instanceof Error && 'code' in err ? String(err.code) : String(err));
    }
  }

  async function scan(recheck: Recheck = RECHECK_ALL): Promise<ScanResult> {
    const at = now();
    const listed = await list(at);
    if ('kind' in listed) return listed;
    const { names, realDir, id } = listed;
    const replaced = lastDir !== null && (lastDir.dev !== id.dev || lastDir.ino !== id.ino);
    lastDir = id;
    // Another directory under the same path: nothing of the last one's looks holds.
    const all = recheck.all || replaced;
    const lookAt = (file: string): Promise<Look> | Look => {
      const last = looks.get(file);
      if (!all && last !== undefined && last.lasting && last.final && !recheck.names.has(file)) return last;
      return inspectCandidate(dir, realDir, file, limits, last?.read, wallNow);
    };

    const byName = new Map<string, string[]>();
    const misnamed: Misnamed[] = [];
    const nextWarned = new Set<string>();
    for (const file of names) {
      const c = classifyEntry(file);
      if (c.kind === 'app') byName.set(c.name, [...(byName.get(c.name) ?? []), file]);
      if (c.kind === 'misnamed') {
        const message = describeMisnamed(join(dir, file), c);
        nextWarned.add(message);
        misnamed.push({ file, message, firstSeen: !warned.has(message) });
      }
    }
    warned = nextWarned;

    const nextSeen = new Map<string, Seen>();
    const nextLooks = new Map<string, Kept>();
    const entries: ScanEntry[] = [];
    // Candidates are looked at LOOKS_AT_ONCE at a time (each holds a descriptor while it reads);
    // the entries keep the directory's order.
    const candidates = [...byName];
    const found: Array<{ name: string; files: string[]; look?: Look }> = [];
    for (let i = 0; i < candidates.length; i += LOOKS_AT_ONCE) {
      const chunk = candidates.slice(i, i + LOOKS_AT_ONCE).map(async ([name, files]) =>
        files.length === 1 ? { name, files, look: await lookAt(files[0] as string) } : { name, files },
      );
      found.push(...(await Promise.all(chunk)));
    }
    for (const { name, files, look } of found) {
      const [file] = files;
      if (file === undefined) continue;
      if (look === undefined) {
        entries.push(conflictEntry(dir, name, files));
        continue;
      }
      const obs = look.observation;
      if (obs.kind === 'gone') continue;
      const prev = seen.get(file);
      const fingerprint = obs.kind === 'changing' ? null : obs.fingerprint;
      // A new look starts the window when the kernel says the file last changed (its ctime), not
      // when we happened to look, which a watcher's debounce makes later; never before the last
      // listing (it showed another state), nor after now. At start-up there is no last listing.
      const changed = obs.kind === 'read' && lastAt !== null ? Math.min(at, Math.max(lastAt, obs.changedMs)) : at;
      const since = prev !== undefined && fingerprint !== null && prev.fingerprint === fingerprint ? prev.since : changed;
      if (fingerprint !== null) nextSeen.set(file, { fingerprint, since });
      const final = obs.kind !== 'changing' && at - since >= settleMs;
      nextLooks.set(file, { ...look, final });
      if (!final) {
        entries.push({ name, state: 'unsettled', file, settleAt: since + settleMs });
      } else if (obs.kind === 'refused') {
        entries.push({ name, state: 'refused', file, code: obs.code, message: obs.message });
      } else {
        const { bytes, sha256, size, mtimeMs, ino } = obs;
        entries.push({ name, state: 'settled', file, bytes, sha256, size, mtimeMs, ino });
      }
    }
    seen = nextSeen;
    looks = nextLooks;
    lastAt = at;

    const waiting = entries.flatMap((e) => (e.state === 'unsettled' ? [e] : []));
    const nextSettleAt = waiting.length === 0 ? null : Math.min(...waiting.map((e) => e.settleAt));
    return { kind: 'listing', at, dir: id, replaced, entries, unsettled: waiting.map((e) => e.name), nextSettleAt, misnamed };
  }

  return { scan };
}
