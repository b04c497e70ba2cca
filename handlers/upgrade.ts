import type { HandlerDeps } from './deps.ts';
import type { DesiredSpec, VmChange } from './plan.ts';
import type { AppRecord } from '../src/state/record.ts';
import type { VmInfo } from '../src/vmm/messages.ts';
import { stopVmGracefully } from './restart.ts';
import { portsOfGuest } from '../src/controller/port-claims.ts';
import { beginOperation, markLaunched, markStopped, registerHash } from './intent.ts';
import { gpuConfigOf } from '../src/controller/gpu-allocator.ts';

// Upgrade in place, keeping the VM and its app id (so its keys survive): register the new hash,
// UpdateVm while running (the VMM validates ports before anything stops), stop, resize if asked,
// StartVm; later reconciles watch the boot. UpdateVm alone never restarts the guest (docs/dstack.md §2.2).
export async function upgradeApp(
  spec: DesiredSpec,
  vm: VmInfo,
  record: AppRecord,
  changes: VmChange[],
  deps: HandlerDeps,
): Promise<AppRecord> {
  const guestPorts = portsOfGuest(record, vm);
  const updating = await beginOperation({ ...record, file: spec.file }, { op: 'upgrade', toHash: spec.composeHash, phase: 'updating', vmId: vm.id, guestPorts }, deps);
  const registered = await registerHash(updating, spec.composeHash, deps);

  // UpdateVm takes an empty encrypted_env as "keep the old one": a VM that was given variables and
  // now has none gets an empty list sealed, or its guest would boot the old ones, which the new
  // manifest no longer allows (found by the soak).
  const hadEnv = record.envHash !== undefined || (vm.configuration?.encrypted_env ?? '') !== '';
  const sealed = spec.env || hadEnv ? await deps.sealEnv(spec.name, record.appId, spec.env?.entries ?? []) : '';
  await deps.vmm.updateVm({
    id: vm.id,
    compose_file: spec.manifest,
    encrypted_env: sealed,
    update_ports: true,
    ports: spec.ports,
    update_kms_urls: true,
    kms_urls: spec.kmsUrls,
    update_gateway_urls: true,
    gateway_urls: spec.gatewayUrls,
    // Only a change of GPUs is sent: without the field the VM keeps the ones it has.
    ...(changes.includes('gpus') ? { gpus: gpuConfigOf(spec.gpuGrant) } : {}),
  });
  await stopVmGracefully(vm, deps);
  const stopped = await markStopped(registered, deps);
  if (changes.includes('resources')) {
    await deps.vmm.updateVm({ id: vm.id, vcpu: spec.vcpu, memory: spec.memory, disk_size: spec.disk, image: spec.image });
  }
  await deps.vmm.startVm(vm.id);
  // The guest now boots with these env values: recorded with the launch, so the reconciles that
  // watch the boot see no env change (before issue 13 they upgraded again, without end).
  return markLaunched({ ...stopped, envHash: spec.env?.hash }, deps);
}
