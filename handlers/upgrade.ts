import type { HandlerDeps } from './deps.ts';
import type { DesiredSpec, VmChange } from './plan.ts';
import type { AppRecord } from '../src/state/record.ts';
import type { PortMapping, VmInfo } from '../src/vmm/messages.ts';
import { stopVmGracefully } from './restart.ts';
import { beginOperation, markLaunched, registerHash } from './intent.ts';

// Upgrade in place, keeping the VM and its app id (so its keys survive): register the new hash,
// UpdateVm while running (the VMM validates ports before anything stops), stop, resize if asked,
// StartVm; later reconciles watch the boot. UpdateVm alone never restarts the guest (facts §2.2).
export async function upgradeApp(
  spec: DesiredSpec,
  vm: VmInfo,
  record: AppRecord,
  changes: VmChange[],
  deps: HandlerDeps,
): Promise<AppRecord> {
  const updating = await beginOperation({ ...record, file: spec.file }, { op: 'upgrade', toHash: spec.composeHash, phase: 'updating', vmId: vm.id }, deps);
  const registered = await registerHash(updating, spec.composeHash, deps);

  const sealed = spec.env ? await deps.sealEnv(spec.name, record.appId, spec.env.entries) : '';
  if (changes.includes('ports')) await releasePorts(vm, spec, deps);
  await deps.vmm.updateVm({
    id: vm.id,
    compose_file: spec.manifest,
    encrypted_env: sealed,
    update_ports: true,
    ports: spec.ports,
    update_kms_urls: true,
    kms_urls: spec.kmsUrls,
  });
  await stopVmGracefully(vm, deps);
  if (changes.includes('resources')) {
    await deps.vmm.updateVm({ id: vm.id, vcpu: spec.vcpu, memory: spec.memory, disk_size: spec.disk, image: spec.image });
  }
  await deps.vmm.startVm(vm.id);
  return markLaunched(registered, deps);
}

const samePort = (a: PortMapping, b: PortMapping) =>
  a.protocol === b.protocol && a.host_address === b.host_address && a.host_port === b.host_port && a.vm_port === b.vm_port;

// Give up, in the VMM's manifest, the ports the new spec no longer publishes before asking for new
// ones: the VMM refuses a port any other VM's manifest names, so two apps swapping ports would
// otherwise refuse each other for ever. The guest keeps its forwards until the restart.
async function releasePorts(vm: VmInfo, spec: DesiredSpec, deps: HandlerDeps): Promise<void> {
  const current = vm.configuration?.ports ?? [];
  const kept = current.filter((p) => spec.ports.some((q) => samePort(p, q)));
  if (kept.length === current.length) return;
  await deps.vmm.updateVm({ id: vm.id, update_ports: true, ports: kept });
}
