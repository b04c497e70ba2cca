import { createHash } from 'node:crypto';
import type { VmInfo, PortMapping } from '../src/vmm/messages.ts';
import type { AppRecord } from '../src/state/record.ts';
import type { Desired, DesiredSpec } from '../src/controller/spec.ts';
import { grantOfVm } from '../src/controller/gpu-allocator.ts';
import { sameGrant } from '../src/controller/gpu-claims.ts';

export type { Desired, DesiredSpec };

export type Plan =
  | { action: 'noop' }
  | { action: 'deploy'; appId: string }
  | { action: 'upgrade'; changes: VmChange[] }
  | { action: 'restart' }
  | { action: 'await-boot' }
  | { action: 'finalize' }
  | { action: 'await-removal' }
  | { action: 'teardown' }
  | { action: 'forget' }
  // A held app: make its allowlist entry list exactly `keep` (the hash its VM has, if any).
  | { action: 'prune'; keep: string[] }
  // A held app's VM went down, or never restarted into its manifest: (re)start it with that.
  | { action: 'start-held' }
  // A held app's file is back while a teardown cut short still has its VM: the delete is off.
  | { action: 'call-off-teardown' };

export type VmChange = 'compose' | 'ports' | 'resources' | 'kms_urls' | 'gateway_urls' | 'env' | 'gpus';

// The app id of a first deployment: the first 40 hex characters of its compose hash (docs/dstack.md §2.4).
export const appIdOf = (composeHash: string) => composeHash.slice(0, 40);

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

const portKey = (p: PortMapping) => `${p.protocol}|${p.host_address}|${p.host_port}|${p.vm_port}`;
// The same strings, in any order.
export const sameSet = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && [...a].sort().join('\n') === [...b].sort().join('\n');

// Compare the VMM's view of a VM with the spec; an empty list means it already runs this spec.
export function diffVm(vm: VmInfo, spec: DesiredSpec): VmChange[] {
  const cfg = vm.configuration;
  if (!cfg) return ['compose'];
  const changes: VmChange[] = [];
  if (sha256(cfg.compose_file) !== spec.composeHash) changes.push('compose');
  if (!sameSet(cfg.ports.map(portKey), spec.ports.map(portKey))) changes.push('ports');
  if (cfg.vcpu !== spec.vcpu || cfg.memory !== spec.memory || cfg.disk_size !== spec.disk || cfg.image !== spec.image) {
    changes.push('resources');
  }
  if (!sameSet(cfg.kms_urls, spec.kmsUrls)) changes.push('kms_urls');
  if (!sameSet(cfg.gateway_urls, spec.gatewayUrls)) changes.push('gateway_urls');
  if (!sameGrant(grantOfVm(vm), spec.gpuGrant)) changes.push('gpus');
  return changes;
}

// What an upgrade of `vm` to `spec` would change. Env values are not in the compose hash; the
// record says which values the VM was given.
function changesOf(spec: DesiredSpec, record: AppRecord | undefined, vm: VmInfo): VmChange[] {
  const changes = diffVm(vm, spec);
  if ((spec.env?.hash ?? '') !== (record?.envHash ?? '')) changes.push('env');
  return changes;
}

// The spec in the form `vm` already runs. A VM deployed by a release before issue 16 has the same
// content serialised as it was then (`"allowed_envs": []`); with nothing else to change it is up to
// date, kept under that hash, so a package upgrade restarts no app (README "Decisions"). Any real
// change (content, ports, size, env) is an upgrade anyway, and it goes to today's form.
export function inRunningForm(spec: DesiredSpec, record: AppRecord | undefined, vm: VmInfo | undefined): DesiredSpec {
  const earlier = spec.earlierForm;
  if (!earlier || !vm?.configuration || sha256(vm.configuration.compose_file) !== earlier.composeHash) return spec;
  const kept: DesiredSpec = { ...spec, manifest: earlier.manifest, composeHash: earlier.composeHash };
  return changesOf(kept, record, vm).length === 0 ? kept : spec;
}

// Whether `hash` is the compose hash of `spec` in either of its forms.
export const isHashOf = (spec: Pick<DesiredSpec, 'composeHash' | 'earlierForm'>, hash: string) =>
  hash === spec.composeHash || hash === spec.earlierForm?.composeHash;

// Find the VM that belongs to an app: by the recorded VM id, else by name and app id (adoption
// after a crash between CreateVm and saving its id; rule 17/18). Extra matches are duplicates.
export function findAppVm(
  vms: readonly VmInfo[],
  name: string,
  appId: string | undefined,
  record: AppRecord | undefined,
): { vm?: VmInfo; duplicates: VmInfo[] } {
  const byId = record?.vmId ? vms.find((v) => v.id === record.vmId) : undefined;
  const wantAppId = record?.appId ?? appId;
  const byName = wantAppId ? vms.filter((v) => v.name === name && v.app_id === wantAppId && v.id !== byId?.id) : [];
  const vm = byId ?? byName[0];
  return { vm, duplicates: byName.filter((v) => v.id !== vm?.id) };
}

// An upgrade or restart to this content that ended (failed, or the supervisor died) between
// UpdateVm and StartVm: the manifest matches, but the guest may still run what it booted before.
const unlaunched = (record: AppRecord | undefined, spec: DesiredSpec): boolean => {
  const intent = record?.intent;
  return intent !== undefined && (intent.op === 'upgrade' || intent.op === 'restart') && intent.toHash === spec.composeHash && intent.launched !== true;
};

// The boot error a guest reports when it could not register with the gateway (Tier 2). Its boot
// goes on and its checker registers again by itself (docs/dstack.md, Gateway): the app runs on its
// direct ports meanwhile, so this is reported, not answered with a restart (which would kill a
// running app for every gateway outage, again and again).
export const isGatewayRegistrationError = (bootError: string) => bootError.startsWith('dstack-gateway registration failed');

// A guest error that calls for a restart.
const bootFailed = (vm: VmInfo) => vm.boot_error !== '' && !isGatewayRegistrationError(vm.boot_error);

// Decide the next step for one app from desired state, our record, and the VMM's truth.
export function planApp(desired: Desired, record: AppRecord | undefined, vm: VmInfo | undefined): Plan {
  if (desired.kind === 'hold') return planHeld(desired.fileMissing === true, record, vm);
  if (desired.kind === 'gone') {
    if (!record) return { action: 'noop' };
    if (!vm) return { action: 'forget' };
    return vm.status === 'removing' ? { action: 'await-removal' } : { action: 'teardown' };
  }
  const { spec } = desired;
  if (!vm) return { action: 'deploy', appId: record?.appId ?? appIdOf(spec.composeHash) };
  if (vm.status === 'removing') return { action: 'await-removal' };
  const changes = changesOf(spec, record, vm);
  if (changes.length > 0) return { action: 'upgrade', changes };
  if (vm.status !== 'running' || bootFailed(vm) || unlaunched(record, spec)) return { action: 'restart' };
  if (vm.boot_progress !== 'done') return { action: 'await-boot' };
  const settled =
    record?.appliedHash === spec.composeHash &&
    record.vmId === vm.id &&
    record.phase === 'running' &&
    !record.intent &&
    (record.envHash ?? '') === (spec.env?.hash ?? '') &&
    sameSet(record.registeredHashes, [spec.composeHash]);
  return settled ? { action: 'noop' } : { action: 'finalize' };
}

// A held app (its file invalid, refused, settling or pending delete) deploys nothing new and tears
// nothing down, but what it has stays sound: the allowlist lists only what its VM may boot (its
// manifest's hash, and while an operation is open the applied one its guest may still run), so
// hashes registered for deploys that never ran go; and its VM, if it went down, is started again.
// A teardown still removing a VM is left alone; one cut short before that (StopVm failed, or the
// supervisor died) is called off once the file is back, and the VM kept like any other (found by
// the soak: left as it was, the VM once crashed was never started again); one cut short after the
// VM went is finished.
function planHeld(fileMissing: boolean, record: AppRecord | undefined, vm: VmInfo | undefined): Plan {
  if (!record) return { action: 'noop' };
  if (vm && record.intent?.op === 'teardown') return fileMissing || vm.status === 'removing' ? { action: 'noop' } : { action: 'call-off-teardown' };
  // A teardown cut short after its VM went has nothing left to keep: it is finished (its allowlist
  // entry and record go), whatever the file says now (found by the soak, seed 18303).
  if (record.intent?.op === 'teardown') return { action: 'forget' };
  const keep = new Set<string>();
  if (vm?.configuration) keep.add(sha256(vm.configuration.compose_file));
  if (vm && record.intent && record.appliedHash) keep.add(record.appliedHash);
  if (!sameSet(record.registeredHashes, [...keep])) return { action: 'prune', keep: [...keep] };
  if (vm && (vm.status === 'exited' || vm.status === 'stopped')) return { action: 'start-held' };
  // An upgrade cut short after UpdateVm: the guest still has the old forwards while the manifest
  // names the new ports, which the VMM then gives to others; restart it into its manifest. Only if
  // UpdateVm got through: one the VMM refused (a port another VM holds) changed nothing, and the
  // restart would be for nothing (found by the soak, seed 15202).
  const intent = record.intent;
  const updated = vm?.configuration !== undefined && sha256(vm.configuration.compose_file) === intent?.toHash;
  if (vm?.status === 'running' && intent && (intent.op === 'upgrade' || intent.op === 'restart') && !intent.launched && updated) return { action: 'start-held' };
  return { action: 'noop' };
}
