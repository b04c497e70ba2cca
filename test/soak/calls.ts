// Invariants over the simulated VMM's call log, not the end state: between two checks, what the
// supervisor did to each app's VM must be justified by what the ops did to that app. A restart
// loop (issue 13 item 1: an app with NAME.env upgraded and restarted on every pass) passes every
// end-state check most of the time; counted here it fails at once.
import type { CallRecord } from '../../src/sim/faults.ts';

// Why an op may justify VMM calls for one app. `end`: its file was deleted or renamed away, the
// only thing that may end its VM (a teardown) and so let a new one be created.
export type Reason = 'file' | 'env' | 'crash' | 'auth' | 'record' | 'end';

// The calls from one check to the next, and the events that justify them.
export type Window = {
  // Index in the call log of the window's first call.
  start: number;
  events: Map<string, Map<Reason, number>>;
  // The supervisor was started again (killed by an op, or it exited and "systemd" restarted it).
  restarts: number;
  vmmRestarts: number;
  // Each app's VM id when the window opened (at the end of the previous check).
  vmsBefore: ReadonlyMap<string, string>;
  // Apps that were waiting for a port then (another app's VM or file held it).
  waitingBefore: ReadonlySet<string>;
};

export const MUTATING = new Set(['CreateVm', 'UpdateVm', 'StartVm', 'StopVm', 'ShutdownVm', 'RemoveVm']);

// A window opening at call `start`, with the VMs and the apps waiting for a port as they are now.
export function openWindow(start: number, vmsBefore: ReadonlyMap<string, string>, waitingBefore: ReadonlySet<string> = new Set()): Window {
  return { start, events: new Map(), restarts: 0, vmmRestarts: 0, vmsBefore, waitingBefore };
}

// Note that an op did `reason` to app `name`.
export function note(window: Window, name: string, reason: Reason): void {
  const mine = window.events.get(name) ?? new Map<Reason, number>();
  mine.set(reason, (mine.get(reason) ?? 0) + 1);
  window.events.set(name, mine);
}

const injected = (c: CallRecord) => c.outcome === 'fault' || c.outcome === 'fault-after-apply';
const applied = (c: CallRecord) => c.outcome === 'ok' || c.outcome === 'fault-after-apply';

// The most StartVm calls, and the most applied CreateVm + UpdateVm calls, that app `name` may get
// in the window, with what makes up the number. Each term is something that can cost one
// operation (one upgrade: UpdateVm + stop + StartVm; one deploy: CreateVm, which starts the VM
// itself; one restart: StartVm), and nothing else may:
// - an op on its inputs (`file`, `env`: one upgrade or deploy each; changes that come together
//   coalesce, so this is an upper bound), or one of its files deleted or renamed away (`end`: a
//   teardown, or, of two files for one name, the one left becomes the app and deploys or upgrades
//   once; seed 9202);
// - having waited for a port at the last check (`waited`: an op on another app frees it, and
//   this one then deploys or upgrades once);
// - a crash of its VM (`crash`: one restart);
// - a hand edit of its allowlist entry (`auth`: a boot in the moment before the next resync puts
//   the entry back is denied, and the supervisor restarts it once);
// - a change to its state record (`record`: moved aside, the app is adopted again, and a VM of it
//   that went down meanwhile is started once);
// - a restart of the supervisor (`restarts`, for every app: an operation cut short between
//   UpdateVm and StartVm is finished after it with one more UpdateVm and StartVm);
// - a restart of the VMM (`vmmRestarts`, for every app: calls during its downtime fail, and the
//   operation is run again once, as after a supervisor restart);
// - an injected failure of one of its calls (`faults`) or of a call about no VM, i.e. Status
//   (`unattributed`, for every app): the operation fails and is run again once.
function budgetOf(window: Window, name: string, calls: readonly CallRecord[]): { total: number; why: string } {
  const mine = window.events.get(name) ?? new Map<Reason, number>();
  const terms: Array<[string, number]> = [
    ...(['file', 'env', 'end', 'crash', 'auth', 'record'] as const).map((r): [string, number] => [r, mine.get(r) ?? 0]),
    ['waited', window.waitingBefore.has(name) ? 1 : 0],
    ['restarts', window.restarts],
    ['vmmRestarts', window.vmmRestarts],
    ['faults', calls.filter((c) => c.name === name && injected(c)).length],
    ['unattributed', calls.filter((c) => c.name === undefined && injected(c)).length],
  ];
  const used = terms.filter(([, n]) => n > 0);
  return { total: used.reduce((sum, [, n]) => sum + n, 0), why: used.length === 0 ? 'no op touched it' : used.map(([t, n]) => `${t} ${n}`).join(', ') };
}

// The window's violations so far (`calls`: the log from window.start on; `vmsNow`: each app's VM
// id now). Counts only grow, so any violation here is final.
export function checkCalls(window: Window, calls: readonly CallRecord[], vmsNow: ReadonlyMap<string, string>): string[] {
  const violations: string[] = [];
  const names = new Set([...calls.filter((c) => MUTATING.has(c.method)).flatMap((c) => (c.name === undefined ? [] : [c.name])), ...window.vmsBefore.keys()]);
  for (const name of [...names].sort()) {
    const mine = calls.filter((c) => c.name === name);
    const budget = budgetOf(window, name, calls);
    const starts = mine.filter((c) => c.method === 'StartVm').length;
    if (starts > budget.total) violations.push(`restart-loop: ${name}: ${starts} StartVm since the last check, more than the ${budget.total} its ops justify (${budget.why})`);
    const changes = mine.filter((c) => (c.method === 'CreateVm' || c.method === 'UpdateVm') && applied(c)).length;
    if (changes > budget.total) violations.push(`restart-loop: ${name}: ${changes} CreateVm + UpdateVm applied since the last check, more than the ${budget.total} its ops justify (${budget.why})`);
    // A VM is replaced only after its file went (a teardown); one without a VM may get one.
    const ends = window.events.get(name)?.get('end') ?? 0;
    const creates = mine.filter((c) => c.method === 'CreateVm' && applied(c)).length;
    const mayCreate = (window.vmsBefore.has(name) ? 0 : 1) + ends;
    if (creates > mayCreate) violations.push(`vm-replaced: ${name}: ${creates} VMs created since the last check, ${mayCreate} allowed (${window.vmsBefore.has(name) ? 'it had a VM' : 'it had none'}, ${ends} deletes or renames of its file)`);
    const before = window.vmsBefore.get(name);
    const now = vmsNow.get(name);
    // A record moved aside lets the teardown of a file deleted while the record held it go ahead.
    const released = now === undefined && (window.events.get(name)?.get('record') ?? 0) > 0;
    if (before !== undefined && now !== before && ends === 0 && !released) {
      violations.push(`vm-replaced: ${name} ran VM ${before} at the last check and now ${now ?? 'none'}, with no delete or rename of its file since`);
    }
  }
  return violations;
}

// Which apps may have an operation that failed in `window` (`calls`: the log from its start) and
// is retried after its backoff (rule 16), possibly after convergence: those an injected failure
// hit, and every app when a call about no VM (Status) failed or the VMM restarted, since any
// operation waiting on it then failed.
export function retriesDue(window: Window, calls: readonly CallRecord[]): (name: string) => boolean {
  const hit = new Set(calls.filter(injected).map((c) => c.name));
  const all = hit.has(undefined) || window.vmmRestarts > 0;
  return (name) => all || hit.has(name);
}

// Mutating calls made while nothing happened, after convergence: the supervisor must be quiet.
// The exceptions are retries with backoff (rule 16): of an app whose deploy waits for a port
// another app's VM holds (`waiting`; refused, they change nothing, or the start of its held VM),
// and of an app whose operation
// an injected failure made fail (`retryDue`; found by seed 7202: a held app's restart whose
// StopVm failed ran again a second later). These still count against the window's budget
// (checkCalls), which a loop soon exceeds; this catches what the budget is too generous to see.
export function quietOffences(calls: readonly CallRecord[], waiting: ReadonlySet<string>, retryDue: (name: string) => boolean = () => false): string[] {
  const counts = new Map<string, number>();
  for (const c of calls) {
    if (!MUTATING.has(c.method)) continue;
    // A waiting app's file is held (a port another app's VM publishes): its VM, if it went down, is
    // started again with the content it has, which the end state does not require of it (seed
    // 23202: a StartVm of such a VM came a resync after convergence).
    const waited = waiting.has(c.name ?? '') && (((c.method === 'CreateVm' || c.method === 'UpdateVm') && !applied(c)) || c.method === 'StartVm');
    // A call still in flight is judged by its outcome: seed 23202 read a StartVm while pending
    // that an injected failure then failed, which is no loop (quietWindow waits for it).
    if (waited || c.outcome === 'fault' || c.outcome === 'pending' || (c.name !== undefined && retryDue(c.name))) continue;
    const key = `${c.name ?? '?'} ${c.method} (${c.outcome})`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([key, n]) => `loop: ${key} ×${n} after convergence, with no op to cause it`);
}

// Whether an allowlist write that changed the entries `ids` (app ids) is the retry of operations
// an injected failure failed, each of an app (`nameOf`, from its VM) with a retry due: seed 23202
// saw a held app's prune, whose reconcile a Status fault had failed, run again after convergence.
export function retriedEntries(ids: readonly string[], nameOf: ReadonlyMap<string, string>, retryDue: (name: string) => boolean): boolean {
  return ids.length > 0 && ids.every((id) => {
    const name = nameOf.get(id);
    return name !== undefined && retryDue(name);
  });
}
