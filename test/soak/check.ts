// One `check` op: wait until the supervisor has converged (the end-state invariants hold on two
// looks a resync apart) while the call-log invariants hold throughout, then watch a quiet window
// of two resync periods in which, with no op, it must make no VMM change and write no allowlist.
// Faults are not cleared first: failures still queued are the supervisor's to get through, and a
// loop they start must show here rather than be wiped away before the look.
import { readFile } from 'node:fs/promises';
import type { VmInfo } from '../../src/vmm/messages.ts';
import { checkCalls, quietOffences, retriedEntries, retriesDue, type Window } from './calls.ts';
import type { EnvVar } from './manifest.ts';
import { blockedByPorts, checkInvariants, expectApps, type History } from './oracle.ts';
import type { Stage } from './stage.ts';
import { checkStatusFiles } from './status-check.ts';

// What a check reads besides the stage.
export type CheckInputs = {
  stage: Stage;
  history: History;
  foreign: ReadonlyMap<string, unknown>;
  window: Window;
  // Problems found outside the check (a crash, a torn read of auth-config.json).
  extra: () => string[];
  // Atomic writes of auth-config.json so far.
  authWrites: () => number;
};

// What a check found: each app's VM id at its end, and the apps waiting for a port then, for the
// next window.
export type CheckResult = { violations: string[]; crossChecked: number; vms: Map<string, string>; waiting: Set<string> };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// How long the quiet window's end waits for VMM calls still in flight (the simulated VMM answers
// in milliseconds; one hung by an injected fault stays pending).
const IN_FLIGHT_GRACE_MS = 5_000;

// Each name's first VM (creation order), by id.
export function vmIdsByName(vms: readonly VmInfo[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const vm of vms) if (!out.has(vm.name)) out.set(vm.name, vm.id);
  return out;
}

// What a VM's guest booted, with encrypted_env opened by the simulated KMS's key for its app.
function launchedOf(stage: Stage, vm: VmInfo): { compose: string; env: EnvVar[] | string } {
  const compose = stage.sim.state.launchedCompose(vm.id);
  const hex = stage.sim.state.launchedEnv(vm.id);
  if (hex === '') return { compose, env: [] };
  try {
    const env = stage.sim.envKeys.decrypt(vm.app_id, hex);
    return { compose, env: [...env].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)) };
  } catch (err) {
    return { compose, env: `undecryptable (${(err as Error).message})` };
  }
}

async function look(inputs: CheckInputs) {
  const { stage, window } = inputs;
  const vms = stage.sim.state.list();
  const expected = await expectApps(stage.appsDir, stage.stateDir, process.getuid?.() ?? 0);
  const allowlist = (JSON.parse(await readFile(stage.authPath, 'utf8')) as { apps: Record<string, { composeHashes: string[] }> }).apps;
  const vmsNow = vmIdsByName(vms);
  const fatal = checkCalls(window, stage.sim.faults.callLog().slice(window.start), vmsNow);
  const apps = blockedByPorts(expected.apps, vms);
  const end = checkInvariants(expected, { vms, allowlist, foreign: inputs.foreign, history: inputs.history, launched: (vm) => launchedOf(stage, vm) });
  const violations = [...inputs.extra(), ...end.violations, ...(await checkStatusFiles(stage.stateDir, expected, apps, vms))];
  const waiting = new Set([...apps].filter(([, e]) => e.kind === 'held' && e.waiting).map(([name]) => name));
  return { fatal, violations, crossChecked: end.crossChecked, waiting, vmsNow };
}

// Watch `ms` with no op: any VMM change (but a waiting app's refused retry, or a retry of what an
// injected failure failed) is a loop; so is an allowlist write, unless some app is waiting (its
// retries re-register its hash) or it changes only entries of apps with such a retry due.
async function quietWindow(inputs: CheckInputs, waiting: ReadonlySet<string>, ms: number): Promise<string[]> {
  const mark = inputs.stage.sim.faults.callLog().length;
  const retryDue = retriesDue(inputs.window, inputs.stage.sim.faults.callLog().slice(inputs.window.start, mark));
  const writes = inputs.authWrites();
  const entriesBefore = await readFile(inputs.stage.authPath, 'utf8');
  const deadline = Date.now() + ms;
  for (;;) {
    const calls = inputs.stage.sim.faults.callLog().slice(mark);
    const offences = quietOffences(calls, waiting, retryDue);
    if (offences.length > 0) return offences;
    // Calls still in flight at the end are waited for, a while, to be judged by their outcome.
    const inFlight = calls.some((c) => c.outcome === 'pending');
    if (Date.now() >= deadline && (!inFlight || Date.now() >= deadline + IN_FLIGHT_GRACE_MS)) break;
    await sleep(50);
  }
  const written = inputs.authWrites() - writes;
  if (written === 0 || waiting.size > 0) return [];
  const changed = changedEntries(entriesBefore, await readFile(inputs.stage.authPath, 'utf8'));
  const nameOf = new Map(inputs.stage.sim.state.list().map((vm) => [vm.app_id, vm.name]));
  if (retriedEntries(changed.ids, nameOf, retryDue)) return [];
  return [`loop: auth-config.json written ${written} times after convergence, with no op to cause it (${changed.described})`];
}

// Which app entries (by app id) differ between two versions of auth-config.json, and how.
function changedEntries(before: string, after: string): { ids: string[]; described: string } {
  const apps = (text: string) => (JSON.parse(text) as { apps: Record<string, { composeHashes?: string[] }> }).apps;
  const [a, b] = [apps(before), apps(after)];
  const short = (e: { composeHashes?: string[] } | undefined) => (e ? `[${(e.composeHashes ?? []).map((h) => h.slice(0, 12)).join(', ')}]` : 'none');
  const ids = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((id) => JSON.stringify(a[id]) !== JSON.stringify(b[id]));
  return { ids, described: ids.map((id) => `${id.slice(0, 12)}: ${short(a[id])} -> ${short(b[id])}`).join('; ') || 'no entry changed' };
}

// Converge within `timeoutMs`, then hold quiet for `quietMs`.
export async function runCheck(inputs: CheckInputs, timeoutMs: number, quietMs: number): Promise<CheckResult> {
  const deadline = Date.now() + timeoutMs;
  let passes = 0;
  let last = await look(inputs);
  for (;;) {
    if (last.fatal.length > 0) return { violations: [...last.fatal, ...last.violations], crossChecked: last.crossChecked, vms: last.vmsNow, waiting: last.waiting };
    passes = last.violations.length === 0 ? passes + 1 : 0;
    if (passes === 2) break;
    if (Date.now() >= deadline) {
      const violations = last.violations.length > 0 ? last.violations : ['timeout: the invariants held once but not on a second look'];
      return { violations, crossChecked: last.crossChecked, vms: last.vmsNow, waiting: last.waiting };
    }
    await sleep(passes === 1 ? 1000 : 100);
    last = await look(inputs);
  }
  const offences = await quietWindow(inputs, last.waiting, quietMs);
  const after = await look(inputs);
  return { violations: [...offences, ...after.fatal], crossChecked: last.crossChecked, vms: after.vmsNow, waiting: after.waiting };
}
