import type { HandlerDeps } from './deps.ts';
import type { Desired, DesiredSpec } from './plan.ts';
import type { AppRecord } from '../src/state/record.ts';
import type { VmInfo } from '../src/vmm/messages.ts';
import type { ReconcileResult } from '../src/controller/workqueue.ts';
import { appIdOf, findAppVm, inRunningForm, isGatewayRegistrationError, planApp } from './plan.ts';
import { adopt, takeoverReason, withBootKmsUrls } from './adopt.ts';
import { deployApp } from './deploy.ts';
import { upgradeApp } from './upgrade.ts';
import { restartApp, stopVmGracefully } from './restart.ts';
import { markLaunched, markStopped } from './intent.ts';
import { finalizeApp, urlsOf } from './finalize.ts';
import { repairAllowlistEntry } from './repair.ts';
import { forgetApp, removeVm, teardownApp } from './teardown.ts';
import { VmWaitError } from '../src/controller/vm-wait.ts';
import { grantAddresses } from '../src/controller/gpu-claims.ts';
import { describeError, errorCodeOf } from '../src/errors.ts';
import { StateError } from '../src/state/store.ts';
import type { Decision } from '../src/log/decision.ts';
import { createHash } from 'node:crypto';
import type { Plan } from './plan.ts';

export type ReconcileDeps = HandlerDeps & {
  // What the files say about this app right now.
  desired(name: string): Desired;
  loadRecord(name: string): Promise<AppRecord | undefined>;
  // The VMM's VMs with their configuration, fresh enough for this app.
  listVms(name: string): Promise<VmInfo[]>;
  // Mark that this app's VMs changed, so the next listVms(name) asks the VMM again.
  touched(name: string): void;
  // One journal line per decision (docs/apps-dir.md rule 22).
  decide(decision: Decision): void;
  // The app id the app's last status named, if any (see unrecordedAppId).
  lastAppId(name: string): string | undefined;
  // For a VM whose guest could not register with the gateway: what the gateway lists for it
  // (src/gateway/app-view.ts), or undefined while Tier 2 is off.
  gatewayView?(vm: VmInfo): string | undefined;
  // The VMM's loaded `[cvm] kms_urls` (GetMeta): what a VM created without its own boots with.
  vmmKmsUrls(): Promise<string[]>;
};

// The app id of an app that has no record: the one its last status named, since the record may
// have been moved aside (it could not be read, issue 13) after an upgrade took the file past its
// first compose hash; else the one a first deploy of the file gets. The VM is found by name and
// this id, and adopted rather than deployed twice.
export function unrecordedAppId(name: string, spec: DesiredSpec, deps: Pick<ReconcileDeps, 'lastAppId'>): string {
  return deps.lastAppId(name) ?? appIdOf(spec.composeHash);
}

// How long to look again while a VM someone else is removing frees its ports.
const REMOVAL_POLL_MS = 1_000;

// Reconcile one app name: compare the file, our record and the VMM's truth, and take one step
// towards the file (STYLE 1: a key, not an event). Failures are reported and retried by the loop.
export async function reconcileApp(name: string, deps: ReconcileDeps): Promise<ReconcileResult> {
  const desired = deps.desired(name);
  let record: AppRecord | undefined;
  try {
    record = await deps.loadRecord(name);
  } catch (err) {
    // An unreadable record holds the app, and the pass's status says why: no step, and no retry
    // loop logging the same file every few seconds (issue 13).
    if (err instanceof StateError) return { kind: 'done' };
    throw err;
  }
  if (desired.kind !== 'app' && record === undefined) {
    // The record may have been moved aside (it could not be read) while the file was held or just
    // before it went: the VM its last status named is still ours, found as adoption finds it, and
    // kept sound or torn down (both found by the soak). With none, a deleted file can have left
    // only a status (of a refused file), and it goes (issue 13).
    const lastAppId = deps.lastAppId(name);
    let lost: VmInfo | undefined;
    try {
      lost = lastAppId === undefined ? undefined : findAppVm(await deps.listVms(name), name, lastAppId, undefined).vm;
    } catch (error) {
      return { kind: 'retry', error };
    }
    if (lost) record = adopt(name, name, lost);
    else {
      // No VM, so nothing of this app may boot; but a deploy that never made one may have
      // registered its hash, which nothing else knows of now: the entry goes, whether the file
      // went too or is held (both found by the soak).
      try {
        if (lastAppId !== undefined) await deps.allowlist.removeApp(lastAppId);
      } catch (error) {
        return { kind: 'retry', error };
      }
      if (desired.kind === 'gone') {
        await deps.report({ app: name, file: name, phase: 'gone' });
        return { kind: 'done' };
      }
    }
  }
  let decision: Decision | undefined;
  try {
    return await step(name, desired, record, deps, (d) => {
      decision = d;
      deps.decide(d);
    });
  } catch (error) {
    const message = describeError(error);
    if (record || desired.kind === 'app') {
      const file = desired.kind === 'app' ? desired.spec.file : (record?.file ?? name);
      const latest = (await deps.loadRecord(name)) ?? record;
      if (latest) await deps.records.save({ ...latest, phase: 'failed', lastError: message });
      await deps.report({ app: name, file, phase: 'failed', record: latest, error: message, code: errorCodeOf(error) });
    }
    const failed = decision ? { ...decision, reason: `${decision.action} failed: ${message}`, level: 'error' as const } : undefined;
    return { kind: 'retry', error, decision: failed };
  } finally {
    // Whatever this step did to the VMs, a Status asked for before now no longer shows it.
    if (decision && decision.action !== 'noop') deps.touched(name);
  }
}

async function step(
  name: string,
  desired: Desired,
  record: AppRecord | undefined,
  deps: ReconcileDeps,
  decide: (d: Decision) => void,
): Promise<ReconcileResult> {
  const vms = await deps.listVms(name);
  const appId = desired.kind === 'app' ? unrecordedAppId(name, desired.spec, deps) : undefined;
  const { vm: listed, duplicates } = findAppVm(vms, name, appId, record);
  const vm = listed && desired.kind === 'app' ? await withBootKmsUrls(listed, desired.spec, deps.vmmKmsUrls) : listed;
  // A VM that runs this content as an earlier release serialised it is kept in that form.
  if (desired.kind === 'app') desired = { ...desired, spec: inRunningForm(desired.spec, record, vm) };
  // The VM we own may boot the manifest it has until an operation replaces it: a record that
  // does not list that hash (made ahead of an operation while the app had none) would have the
  // repair drop it from the allowlist while an upgrade keeps failing (found by the soak, 15404).
  if (record && vm && desired.kind === 'app') record = await withRunningHash(record, vm, deps);
  if (duplicates.length > 0) deps.touched(name);
  for (const dup of duplicates) {
    decide({ app: name, file: record?.file ?? name, action: 'teardown', reason: `duplicate VM ${dup.id} of this app` });
    await removeVm(dup, deps);
  }
  const plan = planApp(desired, record, vm);
  if (plan.action !== 'noop') deps.touched(name);
  decide(decisionOf(name, desired, record, vm, plan));

  switch (plan.action) {
    case 'noop': {
      // Every full pass gets here for every settled or held app, whose record says what its VM
      // may boot (held with an open intent too: a deploy cut short, then the file went invalid;
      // found by the soak); a teardown in progress is left to finish.
      if (record && record.intent?.op !== 'teardown') await repairEntry(record, deps);
      // The content may have been held back (invalid) while this VM kept running: say it runs,
      // and whether the gateway routes to it (a registration the guest keeps retrying): the
      // guest's boot error, and what the gateway itself lists for the app.
      if (record && desired.kind === 'app') {
        const unrouted = vm && isGatewayRegistrationError(vm.boot_error) ? { error: [vm.boot_error, deps.gatewayView?.(vm)].filter(Boolean).join('; '), code: 'GATEWAY_UNREGISTERED' } : {};
        // Its URLs too: the gateway's domain can change with nothing to change in the VM (issue 14).
        await deps.report({ app: name, file: desired.spec.file, phase: record.phase, record, urls: urlsOf(desired.spec, record.appId), gpus: grantAddresses(desired.spec.gpuGrant), ...unrouted });
      }
      return { kind: 'done' };
    }
    case 'await-removal':
      return { kind: 'requeueAfter', ms: REMOVAL_POLL_MS };
    case 'teardown':
      await teardownApp(record as AppRecord, vm, deps);
      return { kind: 'done' };
    case 'forget':
      await forgetApp(record as AppRecord, deps);
      return { kind: 'done' };
    case 'prune':
      await pruneHeld(record as AppRecord, plan.keep, deps);
      return { kind: 'done' };
    case 'call-off-teardown':
      // The next step keeps the VM sound as for any held app (its entry, a restart if it is down).
      await deps.records.save({ ...(record as AppRecord), intent: undefined, phase: 'pending' });
      return { kind: 'requeueAfter', ms: deps.timing.pollMs };
    case 'start-held':
      await repairEntry(record as AppRecord, deps);
      await startHeld(record as AppRecord, vm as VmInfo, deps);
      return { kind: 'done' };
  }
  if (desired.kind !== 'app') return { kind: 'done' };
  const { spec } = desired;
  switch (plan.action) {
    // An operation returns once the guest is launched; later reconciles watch its boot, so a slow
    // or hung guest holds no slot (rule 15).
    case 'deploy':
      await deployApp(spec, plan.appId, record, deps);
      return { kind: 'requeueAfter', ms: deps.timing.pollMs };
    case 'upgrade':
      // The VM runs the old hash until the upgrade is through, and an upgrade can fail for good
      // (a port another app holds): its entry must stay right meanwhile (found by the soak).
      if (record) await repairEntry(record, deps);
      await upgradeApp(spec, vm as VmInfo, record ?? adopt(spec.name, spec.file, vm as VmInfo), plan.changes, deps);
      return { kind: 'requeueAfter', ms: deps.timing.pollMs };
    case 'restart':
      await failOwnBoot(record, vm as VmInfo, deps);
      if (record) await repairEntry(record, deps);
      await restartApp(spec, vm as VmInfo, record ?? adopt(spec.name, spec.file, vm as VmInfo), deps);
      return { kind: 'requeueAfter', ms: deps.timing.pollMs };
    case 'await-boot':
      await checkBootDeadline(record, vm as VmInfo, deps);
      return { kind: 'requeueAfter', ms: deps.timing.pollMs };
    case 'finalize':
      await finalizeApp(spec, record ?? adopt(spec.name, spec.file, vm as VmInfo), (vm as VmInfo).id, deps);
      break;
  }
  return { kind: 'done' };
}

const composeHashOfVm = (vm: VmInfo | undefined) =>
  vm?.configuration ? createHash('sha256').update(vm.configuration.compose_file, 'utf8').digest('hex') : undefined;

// The journal line for a plan: what, from which hash to which, and why.
function decisionOf(name: string, desired: Desired, record: AppRecord | undefined, vm: VmInfo | undefined, plan: Plan): Decision {
  const file = desired.kind === 'app' ? desired.spec.file : (record?.file ?? name);
  const to = desired.kind === 'app' ? desired.spec.composeHash : undefined;
  const from = composeHashOfVm(vm) ?? record?.appliedHash;
  const base = { app: name, file };
  switch (plan.action) {
    case 'deploy':
      return { ...base, action: 'deploy', to, reason: record?.vmId ? `VM ${record.vmId} is gone; deploying again` : desired.kind === 'app' && desired.renamedFrom ? `new app, renamed from "${desired.renamedFrom}"` : 'new app' };
    case 'upgrade':
      return { ...base, action: 'upgrade', from, to, reason: `changed: ${plan.changes.join(', ')}` };
    case 'restart':
      return {
        ...base,
        action: 'deploy',
        from,
        to,
        reason:
          vm?.status === 'running' && !vm.boot_error
            ? `VM ${vm.id} was updated but its last operation ended before the restart; restarting it`
            : `VM ${vm?.id} is ${vm?.status}${vm?.boot_error ? ` (${vm.boot_error})` : ''}; starting it`,
      };
    case 'teardown':
    case 'forget':
      return { ...base, action: 'teardown', from: record?.appliedHash, reason: desired.kind === 'gone' && desired.renamedTo ? `file renamed to "${desired.renamedTo}" (confirmed)` : 'file deleted (confirmed)' };
    case 'await-removal':
      return { ...base, action: 'noop', reason: `VM ${vm?.id} is being removed; waiting` };
    case 'await-boot':
    case 'finalize':
      // Said once, at info, when the VM becomes the app's (issue 16); watching its boot is debug.
      if (plan.action === 'finalize' && vm && record?.vmId !== vm.id) return { ...base, action: 'noop', level: 'info', from, to, reason: takeoverReason(vm) };
      return { ...base, action: 'noop', from, to, reason: `VM ${vm?.id} runs this content; adopting it` };
    case 'noop':
      return { ...base, action: 'noop', from, to, reason: 'up to date' };
    case 'prune':
      return { ...base, action: 'noop', from, reason: 'the file is held: the allowlist keeps only the hash its VM has' };
    case 'call-off-teardown':
      return { ...base, action: 'noop', level: 'info', from, reason: `the file is back before VM ${vm?.id} was removed: the teardown is called off and the VM kept` };
    case 'start-held':
      return {
        ...base,
        action: 'deploy',
        from,
        reason:
          vm?.status === 'running'
            ? `VM ${vm.id} was updated but not restarted before its file was held; restarting it into its manifest`
            : `VM ${vm?.id} is ${vm?.status}; starting it with the content it has (the file is held)`,
      };
  }
}

// The allowlist entry must list what the record says the VM may boot, whoever changed it: checked
// on every pass with nothing else to do, and before a guest is started again, whose boot would
// otherwise be denied and retried on every pass (issue 13; the latter found by the soak).
async function repairEntry(record: AppRecord, deps: ReconcileDeps): Promise<void> {
  const repaired = await repairAllowlistEntry(record, deps);
  if (repaired) deps.decide(repaired);
}

// Start a held app's VM with the manifest it has, stopping it first if it runs something older.
async function startHeld(record: AppRecord, vm: VmInfo, deps: ReconcileDeps): Promise<void> {
  if (vm.status === 'running' || vm.status === 'stopping') await stopVmGracefully(vm, deps);
  const stopped = await markStopped(record, deps);
  await deps.vmm.startVm(vm.id);
  await markLaunched(stopped, deps);
}

// The allowlist entry of a held app lists exactly `keep` (removed when nothing is kept).
async function pruneHeld(record: AppRecord, keep: string[], deps: ReconcileDeps): Promise<void> {
  if (keep.length === 0) await deps.allowlist.removeApp(record.appId);
  else await deps.allowlist.setHashes(record.appId, keep);
  await deps.records.save({ ...record, registeredHashes: keep });
}

// A guest we just launched (intent still open) that failed or exited is a failed operation, not a
// reason to start it again at once: report it with the guest's boot_error and close the intent, so
// the retry after the backoff starts it again (rule 16).
async function failOwnBoot(record: AppRecord | undefined, vm: VmInfo, deps: ReconcileDeps): Promise<void> {
  if (!record?.intent || record.intent.op === 'teardown' || record.vmId !== vm.id) return;
  if (!vm.boot_error && vm.status !== 'exited') return;
  await deps.records.save({ ...record, intent: undefined });
  const why = vm.boot_error ? `failed to boot: ${vm.boot_error}` : `exited during boot (last stage "${vm.boot_progress}")`;
  throw new VmWaitError('VM_BOOT_FAILED', `VM ${vm.id} ${why}`, vm.boot_error);
}

// A guest still booting past [apps] boot_timeout_s since its operation began has failed.
async function checkBootDeadline(record: AppRecord | undefined, vm: VmInfo, deps: ReconcileDeps): Promise<void> {
  const started = record?.intent?.startedAt;
  if (started === undefined || deps.clock.now() - started < deps.timing.bootTimeoutMs) return;
  await deps.records.save({ ...(record as AppRecord), intent: undefined });
  throw new VmWaitError(
    'VM_BOOT_TIMEOUT',
    `VM ${vm.id} did not finish booting within ${Math.round(deps.timing.bootTimeoutMs / 1000)} s (last stage "${vm.boot_progress}")`,
  );
}

// The record, listing the hash of the manifest `vm` has (saved if it had to be added).
async function withRunningHash(record: AppRecord, vm: VmInfo, deps: ReconcileDeps): Promise<AppRecord> {
  const running = composeHashOfVm(vm);
  if (running === undefined || record.registeredHashes.includes(running)) return record;
  const listed: AppRecord = { ...record, registeredHashes: [...record.registeredHashes, running] };
  await deps.records.save(listed);
  return listed;
}

