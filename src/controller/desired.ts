// Turning one directory listing into per-app desired state, with the two delete guards of
// docs/apps-dir.md rule 7 (confirmed deletes) and rule 13 (mass-teardown) kept as explicit state.
import {
  resolvePortClaims,
  resolvePortWaits,
  describePortConflict,
  describePortDeadlock,
  describePortWait,
  portsLeft,
  PORT_CONFLICT,
  PORT_WAIT,
  type PortClaim,
  type PortClaimant,
  type PortConflict,
} from './port-claims.ts';
import type { PortMapping } from '../vmm/messages.ts';
import type { EnvEntry } from '../secrets/dotenv.ts';

// One candidate file as the scanner saw it.
export type ListedApp =
  | { name: string; file: string; kind: 'settled'; fileHash: string; bytes: Buffer; env?: ListedEnv }
  | { name: string; file: string; kind: 'unsettled' }
  // Refused before reading: owner, mode, symlink, size (rules 1, 4), or two files for one name (rule 3).
  | { name: string; file: string; kind: 'refused'; code: string; reason: string; conflict?: boolean };

// NAME.env as read beside the app file: its entries, or why it cannot be used.
export type ListedEnv = { ok: true; entries: EnvEntry[]; hash: string } | { ok: false; code: string; reason: string };

// A built spec, or why the file cannot be built (rule 8).
export type BuiltSpec<S> = { ok: true; spec: S; ports: PortMapping[] } | { ok: false; code: string; reason: string };

// Why an app is held back; 'conflict' covers both duplicate identities and port clashes;
// 'record': its state record cannot be read, so what it owns is unknown (issue 13); 'gpu': it
// waits for GPUs other apps hold (issue 19); 'port-wait': for a port another app's VM still
// publishes while that app moves to other ports.
export type HoldReason = 'unsettled' | 'invalid' | 'refused' | 'conflict' | 'delete-pending' | 'record' | 'gpu' | 'port-wait';

export type AppVerdict<S> =
  // `renamedFrom`: a managed app that vanished had these very bytes (rule 19).
  | { kind: 'app'; spec: S; fileHash: string; renamedFrom?: string }
  // `code`: the stable code of `reason` when it is a problem (not while settling or confirming a delete).
  // `dueAt` (delete-pending): when the delete is confirmed, unless the file comes back first.
  // `waitsFor` (port-wait): the app whose VM must let go of the port first.
  | { kind: 'hold'; why: HoldReason; reason: string; code?: string; fileHash?: string; dueAt?: number; waitsFor?: string }
  | { kind: 'gone'; renamedTo?: string };

export type DeleteGuards = {
  // When each managed app was first seen missing.
  absentSince: Map<string, number>;
  // When a scan first wanted to tear down every managed app (rule 13), if one did.
  massSince?: number;
  // Vanished app → the new name its bytes reappeared under, until the old one is torn down.
  renames?: Map<string, string>;
};

// An app we have a record for: whether it ever ran, and the host ports its VM holds: those its
// manifest names, and those its guest was launched with until an operation restarts it.
// `unreadable`: the record file exists but cannot be used (why, naming the file): the app is
// held whatever its file says, since a deploy could duplicate its VM and a teardown miss it.
// `vmId`: the VM the record names or adoption would find, when the VMM has it. `operating`: an
// operation of it is under way (its record has an intent), which a hold would cut short.
export type ManagedApp = {
  file: string;
  running: boolean;
  ports: readonly PortClaim[];
  vmId?: string;
  operating?: boolean;
  unreadable?: { code: string; message: string };
};

export type PlanInput<S> = {
  listed: readonly ListedApp[];
  managed: ReadonlyMap<string, ManagedApp>;
  // The content hash each app's file had when last seen, to recognise a rename (rule 19).
  lastFileHash: ReadonlyMap<string, string>;
  build: (app: Extract<ListedApp, { kind: 'settled' }>) => BuiltSpec<S>;
  now: number;
  deleteConfirmMs: number;
  massConfirmMs: number;
  // A spec that takes a resource other apps share besides host ports (GPUs).
  shares?: (spec: S) => boolean;
};

export type PlanOutput<S> = {
  verdicts: Map<string, AppVerdict<S>>;
  // Earliest time a later scan could change a held delete, for the caller to schedule.
  recheckAt?: number;
  massGuardActive: boolean;
  // The apps whose verdict may depend on other apps': those claiming or holding host ports, and
  // those whose spec `shares` something.
  coupled: Set<string>;
};

// Decide, for every app name in the listing or in our records, what should happen now.
export function planDirectory<S>(input: PlanInput<S>, guards: DeleteGuards): PlanOutput<S> {
  const verdicts = new Map<string, AppVerdict<S>>();
  const claimants: PortClaimant[] = [];
  const built = new Map<string, { spec: S; fileHash: string; file: string; ports: readonly PortClaim[] }>();
  const coupled = new Set<string>();

  for (const [name, rec] of input.managed) {
    if (rec.unreadable !== undefined) verdicts.set(name, { kind: 'hold', why: 'record', reason: rec.unreadable.message, code: rec.unreadable.code });
  }
  for (const app of input.listed) {
    guards.absentSince.delete(app.name);
    if (verdicts.has(app.name)) continue;
    if (app.kind === 'unsettled') {
      verdicts.set(app.name, { kind: 'hold', why: 'unsettled', reason: 'waiting for the file to settle' });
    } else if (app.kind === 'refused') {
      verdicts.set(app.name, { kind: 'hold', why: app.conflict ? 'conflict' : 'refused', reason: app.reason, code: app.code });
    } else {
      const result = input.build(app);
      if (!result.ok) {
        verdicts.set(app.name, { kind: 'hold', why: 'invalid', reason: result.reason, code: result.code, fileHash: app.fileHash });
        continue;
      }
      built.set(app.name, { spec: result.spec, fileHash: app.fileHash, file: app.file, ports: result.ports });
      if (result.ports.length > 0 || input.shares?.(result.spec)) coupled.add(app.name);
      claimants.push({ name: app.name, file: app.file, ports: result.ports, holds: input.managed.get(app.name)?.running ?? false });
    }
  }

  // A VM of ours whose file is not valid now (invalid, refused, settling, deleted) keeps its
  // ports: a valid file asking for one of them is told so, as for any other owner.
  for (const [name, rec] of input.managed) {
    if (rec.ports.length > 0) coupled.add(name);
    if (!built.has(name) && rec.ports.length > 0) claimants.push({ name, file: rec.file, ports: rec.ports, holds: true, fixed: true });
  }
  const conflicts = resolvePortClaims(claimants);
  // A port a valid app's VM is moving away from is not free until UpdateVm and the restart are
  // through: the VMM refuses a CreateVm naming it before, and a guest launched before the restart
  // finds it bound and exits (found by the soak, seed 19404). An app in the middle of an operation
  // is not made to wait: it goes on, as before.
  const releases = [...built].flatMap(([name, b]) => {
    const rec = input.managed.get(name);
    const leaving = rec === undefined ? [] : portsLeft(rec.ports, b.ports);
    return leaving.length > 0 ? [{ name, file: b.file, ports: leaving }] : [];
  });
  const movable = [...built].filter(([name]) => !conflicts.has(name) && input.managed.get(name)?.operating !== true);
  const { waits, deadlocked } = resolvePortWaits(movable.map(([name, b]) => ({ name, file: b.file, ports: b.ports })), releases);
  for (const [name, b] of built) verdicts.set(name, portVerdict<S>(name, b, conflicts, deadlocked, waits));

  let recheckAt: number | undefined;
  const confirmed: string[] = [];
  for (const [name, rec] of input.managed) {
    if (verdicts.has(name)) continue;
    const since = guards.absentSince.get(name) ?? input.now;
    guards.absentSince.set(name, since);
    const due = since + input.deleteConfirmMs;
    if (input.now >= due) {
      confirmed.push(name);
    } else {
      verdicts.set(name, { kind: 'hold', why: 'delete-pending', reason: `${rec.file} is missing; confirming the delete`, dueAt: due });
      recheckAt = Math.min(recheckAt ?? due, due);
    }
  }

  // Apps held for their record are left out of "every": one bad record beside an unmounted
  // apps.d must not let every other app be torn down at once.
  const heldForRecord = [...input.managed.values()].filter((m) => m.unreadable !== undefined).length;
  const wipesAll = confirmed.length >= 2 && confirmed.length + heldForRecord === input.managed.size;
  let massGuardActive = false;
  let massDue = input.now;
  if (wipesAll) {
    guards.massSince ??= input.now;
    massDue = guards.massSince + input.massConfirmMs;
    if (input.now < massDue) {
      massGuardActive = true;
      recheckAt = Math.min(recheckAt ?? massDue, massDue);
    }
  } else {
    guards.massSince = undefined;
  }
  for (const name of confirmed) {
    verdicts.set(
      name,
      massGuardActive
        ? { kind: 'hold', why: 'delete-pending', reason: 'every managed app vanished at once; waiting for a second scan', dueAt: massDue }
        : { kind: 'gone' },
    );
  }
  markRenames(verdicts, input, (guards.renames ??= new Map()));
  return { verdicts, recheckAt, massGuardActive, coupled };
}

// A valid app's verdict once the host ports are shared out: refused for a port another app holds
// or for a wait that cannot end, waiting for one being let go of, or free to go.
function portVerdict<S>(
  name: string,
  b: { spec: S; fileHash: string },
  conflicts: ReadonlyMap<string, PortConflict>,
  deadlocked: ReadonlyMap<string, PortConflict>,
  waits: ReadonlyMap<string, PortConflict>,
): AppVerdict<S> {
  const conflict = conflicts.get(name);
  if (conflict) return { kind: 'hold', why: 'conflict', reason: describePortConflict(conflict), code: PORT_CONFLICT, fileHash: b.fileHash };
  const deadlock = deadlocked.get(name);
  if (deadlock) return { kind: 'hold', why: 'conflict', reason: describePortDeadlock(deadlock), code: PORT_CONFLICT, fileHash: b.fileHash };
  const wait = waits.get(name);
  if (wait) return { kind: 'hold', why: 'port-wait', reason: describePortWait(wait), code: PORT_WAIT, fileHash: b.fileHash, waitsFor: wait.owner };
  return { kind: 'app', spec: b.spec, fileHash: b.fileHash };
}

// `mv a.yml b.yml`: b is a new app and a's deletion is pending or confirmed; when b's bytes are
// the ones a had, both verdicts say so, for the journal (rule 19). It changes no decision.
function markRenames<S>(verdicts: Map<string, AppVerdict<S>>, input: PlanInput<S>, renames: Map<string, string>): void {
  const vanished = new Map<string, string>();
  for (const [name, v] of verdicts) {
    const hash = input.lastFileHash.get(name);
    const absent = v.kind === 'gone' || (v.kind === 'hold' && v.why === 'delete-pending');
    if (absent && hash !== undefined) vanished.set(hash, name);
  }
  for (const [name, v] of verdicts) {
    if (v.kind !== 'app' || input.managed.has(name)) continue;
    const from = vanished.get(v.fileHash);
    if (from === undefined) continue;
    v.renamedFrom = from;
    renames.set(from, name);
  }
  for (const [from, to] of renames) {
    const old = verdicts.get(from);
    if (old?.kind === 'gone') old.renamedTo = to;
    if (old === undefined || old.kind !== 'hold' || old.why !== 'delete-pending') renames.delete(from);
  }
}
