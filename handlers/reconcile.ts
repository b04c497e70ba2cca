import type { HandlerDeps } from './deps.ts';
import type { Desired } from './plan.ts';
import type { AppRecord } from '../src/state/record.ts';
import type { VmInfo } from '../src/vmm/messages.ts';
import type { ReconcileResult } from '../src/controller/workqueue.ts';
import { appIdOf, findAppVm, planApp } from './plan.ts';
import { deployApp } from './deploy.ts';
import { upgradeApp } from './upgrade.ts';
import { restartApp } from './restart.ts';
import { finalizeApp } from './finalize.ts';
import { forgetApp, removeVm, teardownApp } from './teardown.ts';
import { waitBooted } from '../src/controller/vm-wait.ts';
import { describeError } from '../src/errors.ts';

export type ReconcileDeps = HandlerDeps & {
  // What the files say about this app right now.
  desired(name: string): Desired;
  loadRecord(name: string): Promise<AppRecord | undefined>;
  // The VMM's VMs with their configuration, fresh enough for this app.
  listVms(name: string): Promise<VmInfo[]>;
  // Mark that this app's VMs changed, so the next listVms(name) asks the VMM again.
  touched(name: string): void;
};

// How long to look again while a VM someone else is removing frees its ports.
const REMOVAL_POLL_MS = 1_000;

// Reconcile one app name: compare the file, our record and the VMM's truth, and take one step
// towards the file (STYLE 1: a key, not an event). Failures are reported and retried by the loop.
export async function reconcileApp(name: string, deps: ReconcileDeps): Promise<ReconcileResult> {
  const desired = deps.desired(name);
  const record = await deps.loadRecord(name);
  try {
    return await step(name, desired, record, deps);
  } catch (error) {
    deps.touched(name);
    const message = describeError(error);
    if (record || desired.kind === 'app') {
      const file = desired.kind === 'app' ? desired.spec.file : (record?.file ?? name);
      const latest = (await deps.loadRecord(name)) ?? record;
      if (latest) await deps.records.save({ ...latest, phase: 'failed', lastError: message });
      await deps.report({ app: name, file, phase: 'failed', record: latest, error: message });
    }
    return { kind: 'retry', error };
  }
}

async function step(name: string, desired: Desired, record: AppRecord | undefined, deps: ReconcileDeps): Promise<ReconcileResult> {
  const vms = await deps.listVms(name);
  const appId = desired.kind === 'app' ? appIdOf(desired.spec.composeHash) : undefined;
  const { vm, duplicates } = findAppVm(vms, name, appId, record);
  for (const dup of duplicates) await removeVm(dup, deps);
  const plan = planApp(desired, record, vm);
  if (plan.action !== 'noop') deps.touched(name);

  switch (plan.action) {
    case 'noop':
      return { kind: 'done' };
    case 'await-removal':
      return { kind: 'requeueAfter', ms: REMOVAL_POLL_MS };
    case 'teardown':
      await teardownApp(record as AppRecord, vm, deps);
      return { kind: 'done' };
    case 'forget':
      await forgetApp(record as AppRecord, deps);
      return { kind: 'done' };
  }
  if (desired.kind !== 'app') return { kind: 'done' };
  const { spec } = desired;
  switch (plan.action) {
    case 'deploy': {
      const created = await deployApp(spec, plan.appId, record, deps);
      await finalizeApp(spec, created, created.vmId as string, deps);
      break;
    }
    case 'upgrade':
      await finalizeApp(spec, await upgradeApp(spec, vm as VmInfo, record ?? adopt(spec.name, spec.file, vm as VmInfo), plan.changes, deps), (vm as VmInfo).id, deps);
      break;
    case 'restart':
      await finalizeApp(spec, await restartApp(spec, vm as VmInfo, record ?? adopt(spec.name, spec.file, vm as VmInfo), deps), (vm as VmInfo).id, deps);
      break;
    case 'await-boot': {
      const v = vm as VmInfo;
      await waitBooted(deps.vmm, v.id, deps.clock, { pollMs: deps.timing.pollMs, timeoutMs: deps.timing.bootTimeoutMs });
      await finalizeApp(spec, record ?? adopt(spec.name, spec.file, v), v.id, deps);
      break;
    }
    case 'finalize':
      await finalizeApp(spec, record ?? adopt(spec.name, spec.file, vm as VmInfo), (vm as VmInfo).id, deps);
      break;
  }
  return { kind: 'done' };
}

// A record for a VM found by name and app id with no record of ours (crash before the first save).
function adopt(name: string, file: string, vm: VmInfo): AppRecord {
  return { name, file, appId: vm.app_id, vmId: vm.id, registeredHashes: [], phase: 'pending' };
}
