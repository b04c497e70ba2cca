// `dstack-supervisor destroy [--purge]`: undo what init and the supervisor did on this host.
// Every app CVM the supervisor created (its state records say which, docs/dstack.md §9.9 is the gap this
// closes) is removed with its allowlist entry, record and status; the KMS CVM is stopped but
// KEPT, disk and keys included, so the next init adopts it by name and the KMS identity
// survives (`--purge` removes it too); the units are stopped; the files init rendered go.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { openAllowlist } from '../auth/allowlist.ts';
import { lockPathFor } from '../auth/lock.ts';
import { systemClock, type Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import { waitGone, VmWaitError } from '../controller/vm-wait.ts';
import { describeError, SupervisorError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import { openStateStore } from '../state/store.ts';
import type { AppRecord } from '../state/record.ts';
import { removeAppStatus } from '../status/store.ts';
import type { SystemdManager } from '../systemd/types.ts';
import type { VmmClient } from '../vmm/client.ts';
import { VmmError } from '../vmm/errors.ts';
import type { VmInfo } from '../vmm/messages.ts';
import { isNotFound } from './files.ts';
import { initJournalPath, readInitJournal } from './journal.ts';
import { findKmsVm } from './kms.ts';
import { GATEWAY_VM_NAME } from '../gateway/compose.ts';
import { findGatewayVm } from '../gateway/reconcile.ts';
import { readGatewaySecrets } from '../gateway/secrets.ts';
import { configPaths } from './render.ts';
import { HOST_UNITS } from './units.ts';

// The service itself: stopped first, or it would redeploy apps.d while destroy removes them.
const SUPERVISOR_UNIT = 'dstack-supervisor.service';

// The edges destroy drives.
export type DestroyDeps = {
  config: Config;
  systemd: SystemdManager;
  vmm: VmmClient;
  log: Logger;
  clock?: Clock;
  // How long to wait for one RemoveVm to finish (it is asynchronous, docs/dstack.md §2).
  timing?: { pollMs: number; removeTimeoutMs: number };
};

// What destroy did.
export type DestroyResult = {
  removedApps: string[];
  kms: { vmId: string; action: 'stopped' | 'removed' | 'kept' } | undefined;
  // The Tier 2 gateway CVM, found by name and the app id its kept secrets name.
  gateway: { vmId: string; action: 'stopped' | 'removed' | 'kept' } | undefined;
  stoppedUnits: string[];
  removedFiles: string[];
};

// Destroy the deployment; `purge` also removes the KMS CVM, the TLS files and auth-config.json.
export async function destroyHost(deps: DestroyDeps, options: { purge: boolean }): Promise<DestroyResult> {
  const { config, log, vmm } = deps;
  const clock = deps.clock ?? systemClock;
  const timing = deps.timing ?? { pollMs: 1_000, removeTimeoutMs: 120_000 };
  const store = await openStateStore(config.state_dir);
  // Without the VMM nothing can be removed; refuse before changing anything if that matters.
  if ((await listVms(vmm)) === undefined) {
    const loaded = await store.loadAll();
    const pending = loaded.records.length + loaded.unreadable.length;
    if (pending > 0 || options.purge) {
      throw new SupervisorError(
        'DESTROY_VMM_DOWN',
        `destroy: dstack-vmm is not reachable at ${config.vmm.url}, so ${pending > 0 ? `${pending} app CVM(s)` : 'the KMS CVM'} cannot be removed; ` +
          'start it (systemctl start dstack-vmm, or run `dstack-supervisor init`) and run destroy again',
      );
    }
  }
  const stoppedUnits = await stopUnits(deps.systemd, [SUPERVISOR_UNIT], log);
  if (stoppedUnits.length > 0) {
    log.warn({ UNIT: SUPERVISOR_UNIT }, `${SUPERVISOR_UNIT} stays enabled: its next start runs init again and deploys ${config.apps_dir}; systemctl disable it to keep the host down`);
  }
  // Read after the service stopped, so no app it was deploying is missed. A record that cannot
  // be read leaves a CVM nobody can name: destroy stops there, with the record's own advice.
  const { records, unreadable } = await store.loadAll();
  if (unreadable[0] !== undefined) throw unreadable[0].error;
  const vms = await listVms(vmm);
  const allowlist = openAllowlist(config.auth.config_path);
  const removedApps: string[] = [];
  let gateway: DestroyResult['gateway'];
  try {
    for (const record of records) {
      await removeApp(record, vms ?? [], { ...deps, clock, timing }, allowlist);
      await removeAppStatus(config.state_dir, record.name);
      await store.remove(record.name);
      removedApps.push(record.name);
      log.info({ APP: record.name, ACTION: 'destroy' }, `removed app ${record.name} (its CVM, allowlist entry and state)`);
    }
    gateway = vms === undefined ? undefined : await retireGateway(vms, { ...deps, clock, timing }, allowlist, options.purge);
  } finally {
    await allowlist.close();
  }
  const kms = vms === undefined ? undefined : await retireKms({ ...deps, clock, timing }, options.purge);
  stoppedUnits.push(...(await stopUnits(deps.systemd, [...HOST_UNITS].reverse(), log)));
  const removedFiles = await removeRenderedFiles(config, options.purge);
  for (const file of removedFiles) log.info({ FILE: file }, `removed ${file}`);
  return { removedApps, kms, gateway, stoppedUnits, removedFiles };
}

// Every VM, or undefined when the VMM is not running (then no CVM runs either).
async function listVms(vmm: VmmClient): Promise<VmInfo[] | undefined> {
  try {
    return (await vmm.status({ brief: true })).vms;
  } catch (err) {
    if (err instanceof VmmError && err.code === 'VMM_UNREACHABLE') return undefined;
    throw err;
  }
}

type Steps = DestroyDeps & { clock: Clock; timing: { pollMs: number; removeTimeoutMs: number } };

// RemoveVm the app's CVM (by the recorded id, or by name + app id after a crash before the id
// was saved), wait for the removal, then withdraw its allowlist entry.
async function removeApp(record: AppRecord, vms: VmInfo[], deps: Steps, allowlist: ReturnType<typeof openAllowlist>): Promise<void> {
  const vm = vms.find((v) => v.id === record.vmId) ?? vms.find((v) => v.name === record.name && v.app_id === record.appId);
  if (vm !== undefined) await removeVm(vm.id, deps);
  if (record.appId === '') return;
  await allowlist.removeApp(record.appId).catch(ignoreMissingAllowlist);
}

// Stop the gateway CVM (its disk keeps the ACME account and certificate for a later Tier 2) or,
// with purge, remove it and its secrets; either way no app is left to use it, so gatewayAppId
// and its allowlist entry go.
async function retireGateway(vms: VmInfo[], deps: Steps, allowlist: ReturnType<typeof openAllowlist>, purge: boolean): Promise<DestroyResult['gateway']> {
  const appId = (await readGatewaySecrets(deps.config.state_dir))?.appId;
  if (appId === undefined) return undefined;
  const vm = findGatewayVm(vms, GATEWAY_VM_NAME, appId);
  await allowlist.setGatewayAppId('').catch(ignoreMissingAllowlist);
  await allowlist.removeApp(appId).catch(ignoreMissingAllowlist);
  if (purge) {
    if (vm) await removeVm(vm.id, deps);
    await rm(join(deps.config.state_dir, 'gateway'), { recursive: true, force: true });
    deps.log.info({ VM: vm?.id }, `removed the gateway CVM${vm ? ` ${vm.id}` : ''} and its secrets (--purge): a later gateway.toml makes a new one, with a new certificate`);
    return vm ? { vmId: vm.id, action: 'removed' } : undefined;
  }
  if (vm === undefined) return undefined;
  if (vm.status === 'stopped') return { vmId: vm.id, action: 'kept' };
  await deps.vmm.stopVm(vm.id);
  deps.log.info({ VM: vm.id }, `stopped the gateway CVM ${vm.id}; its disk (ACME account, certificate) is kept`);
  return { vmId: vm.id, action: 'stopped' };
}

// No allowlist file means no entry to withdraw.
function ignoreMissingAllowlist(err: unknown): void {
  if (!(err instanceof SupervisorError && err.code === 'AUTH_MISSING')) throw err;
}

// Stop the KMS CVM (started=false, so a VMM restart does not boot it) or, with purge, remove it.
async function retireKms(deps: Steps, purge: boolean): Promise<DestroyResult['kms']> {
  const known = (await readInitJournal(deps.config.state_dir)).steps.kms?.detail['vm_id'];
  const { vm } = await findKmsVm(deps.vmm, typeof known === 'string' ? known : undefined);
  if (vm === undefined) return undefined;
  if (purge) {
    await removeVm(vm.id, deps);
    deps.log.info({ VM: vm.id }, `removed the KMS CVM ${vm.id} and its disk (--purge): the next init creates a new KMS with new keys`);
    return { vmId: vm.id, action: 'removed' };
  }
  if (vm.status === 'stopped') return { vmId: vm.id, action: 'kept' };
  await deps.vmm.stopVm(vm.id);
  deps.log.info({ VM: vm.id }, `stopped the KMS CVM ${vm.id}; its disk and keys are kept, and the next init starts it again`);
  return { vmId: vm.id, action: 'stopped' };
}

async function removeVm(id: string, deps: Steps): Promise<void> {
  await deps.vmm.removeVm(id).catch((err: unknown) => {
    // Already gone: the goal is reached.
    if (!(err instanceof VmmError && err.code === 'VMM_RPC' && /VM not found/.test(err.vmmMessage ?? ''))) throw err;
  });
  try {
    await waitGone(deps.vmm, id, deps.clock, { pollMs: deps.timing.pollMs, timeoutMs: deps.timing.removeTimeoutMs });
  } catch (err) {
    if (!(err instanceof VmWaitError)) throw err;
    deps.log.warn({ VM: id }, `${err.message}; dstack-vmm finishes the removal in the background`);
  }
}

// Stop each unit that is running; unknown or stopped units are skipped.
async function stopUnits(systemd: SystemdManager, units: string[], log: Logger): Promise<string[]> {
  const stopped: string[] = [];
  for (const unit of units) {
    const state = await systemd.unitState(unit);
    if (state.LoadState !== 'loaded' || state.ActiveState === 'inactive' || state.ActiveState === 'failed') continue;
    await systemd.stopUnit(unit);
    stopped.push(unit);
    log.info({ UNIT: unit }, `stopped ${unit}`);
  }
  return stopped;
}

// The files init rendered, and the journal, so the next start runs init again. auth-config.json
// (the operator's TCB policy and foreign apps) and tls/ (a CA laptops may trust) stay unless
// `purge`.
async function removeRenderedFiles(config: Config, purge: boolean): Promise<string[]> {
  const paths = configPaths(config.init, config.auth.config_path);
  const files = [paths.vmmToml, paths.kmsToml, paths.authSimpleEnv, paths.keyProviderEnv, initJournalPath(config.state_dir)];
  if (purge) files.push(paths.authConfig, lockPathFor(paths.authConfig), join(config.init.config_dir, 'tls'));
  const removed: string[] = [];
  for (const file of files) {
    try {
      await rm(file, { recursive: true });
      removed.push(file);
    } catch (err) {
      if (!isNotFound(err)) throw new SupervisorError('DESTROY_IO', `destroy: cannot remove ${file}: ${describeError(err)}`, { cause: err });
    }
  }
  return removed;
}
