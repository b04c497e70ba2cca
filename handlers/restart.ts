import type { HandlerDeps } from './deps.ts';
import type { DesiredSpec } from './plan.ts';
import type { AppRecord } from '../src/state/record.ts';
import type { VmInfo } from '../src/vmm/messages.ts';
import { waitStopped } from '../src/controller/vm-wait.ts';
import { portsOfGuest } from '../src/controller/port-claims.ts';
import { beginOperation, markLaunched, markStopped } from './intent.ts';

// Bring a VM down: ShutdownVm and wait up to the shutdown timeout, then StopVm (hard) if the guest
// did not power off. A VM that is already down is left as it is.
export async function stopVmGracefully(vm: VmInfo, deps: HandlerDeps): Promise<void> {
  if (vm.status === 'stopped' || vm.status === 'exited') return;
  const timing = { pollMs: deps.timing.pollMs, timeoutMs: deps.timing.shutdownTimeoutMs };
  if (vm.status === 'running') {
    const asked = await deps.vmm.shutdownVm(vm.id).then(
      () => true,
      () => false,
    );
    if (asked && (await waitStopped(deps.vmm, vm.id, deps.clock, timing))) return;
  }
  await deps.vmm.stopVm(vm.id);
  if (!(await waitStopped(deps.vmm, vm.id, deps.clock, timing))) {
    throw new Error(`VM ${vm.id} did not stop after StopVm`);
  }
}

// Start a VM that already holds the wanted spec but is not running cleanly (stopped behind our
// back, exited, or running with a boot_error); later reconciles watch the boot.
export async function restartApp(spec: DesiredSpec, vm: VmInfo, record: AppRecord, deps: HandlerDeps): Promise<AppRecord> {
  const guestPorts = portsOfGuest(record, vm);
  const starting = await beginOperation({ ...record, file: spec.file }, { op: 'restart', toHash: spec.composeHash, phase: 'deploying', vmId: vm.id, guestPorts }, deps);
  if (vm.status === 'running' || vm.status === 'stopping') await stopVmGracefully(vm, deps);
  const stopped = await markStopped(starting, deps);
  await deps.vmm.startVm(vm.id);
  return markLaunched(stopped, deps);
}
