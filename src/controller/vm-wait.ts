import { SupervisorError } from '../errors.ts';
import type { Clock } from '../clock.ts';
import type { VmInfo, StatusRequest, StatusResponse } from '../vmm/messages.ts';

export type VmStatusSource = { status(req?: Partial<StatusRequest>): Promise<StatusResponse> };
export type WaitTiming = { pollMs: number; timeoutMs: number };

// A VM that did not reach the wanted state; carries the guest's own boot_error when there is one.
export class VmWaitError extends SupervisorError {
  readonly bootError: string;
  constructor(code: string, message: string, bootError = '') {
    super(code, message);
    this.bootError = bootError;
  }
}

async function pollVm(
  vmm: VmStatusSource,
  id: string,
  clock: Clock,
  timing: WaitTiming,
  check: (vm: VmInfo | undefined) => boolean,
  onTimeout: (vm: VmInfo | undefined) => VmWaitError,
): Promise<VmInfo | undefined> {
  const deadline = clock.now() + timing.timeoutMs;
  for (;;) {
    const { vms } = await vmm.status({ ids: [id], brief: true });
    const vm = vms.find((v) => v.id === id);
    if (check(vm)) return vm;
    if (clock.now() >= deadline) throw onTimeout(vm);
    await clock.sleep(timing.pollMs);
  }
}

// Wait until the guest reports boot `done` while running; a boot_error or an exit fails at once.
export async function waitBooted(vmm: VmStatusSource, id: string, clock: Clock, timing: WaitTiming): Promise<VmInfo> {
  const vm = await pollVm(
    vmm,
    id,
    clock,
    timing,
    (v) => {
      if (!v) throw new VmWaitError('VM_GONE', `VM ${id} disappeared from dstack-vmm while booting`);
      if (v.boot_error) throw new VmWaitError('VM_BOOT_FAILED', `VM ${id} failed to boot: ${v.boot_error}`, v.boot_error);
      if (v.status === 'exited' || v.status === 'stopped') {
        throw new VmWaitError('VM_BOOT_FAILED', `VM ${id} ${v.status} during boot (last stage "${v.boot_progress}")`);
      }
      return v.status === 'running' && v.boot_progress === 'done';
    },
    (v) =>
      new VmWaitError(
        'VM_BOOT_TIMEOUT',
        `VM ${id} did not finish booting within ${Math.round(timing.timeoutMs / 1000)} s (last stage "${v?.boot_progress ?? ''}")`,
      ),
  );
  return vm as VmInfo;
}

// Wait until the VM is stopped (or exited); used between ShutdownVm/StopVm and StartVm.
export async function waitStopped(vmm: VmStatusSource, id: string, clock: Clock, timing: WaitTiming): Promise<boolean> {
  try {
    await pollVm(vmm, id, clock, timing, (v) => !v || v.status === 'stopped' || v.status === 'exited', () =>
      new VmWaitError('VM_STOP_TIMEOUT', `VM ${id} did not stop within ${Math.round(timing.timeoutMs / 1000)} s`),
    );
    return true;
  } catch (err) {
    if (err instanceof VmWaitError && err.code === 'VM_STOP_TIMEOUT') return false;
    throw err;
  }
}

// Wait until RemoveVm's background cleanup is done: the VM has left Status and freed its ports.
export async function waitGone(vmm: VmStatusSource, id: string, clock: Clock, timing: WaitTiming): Promise<void> {
  await pollVm(vmm, id, clock, timing, (v) => !v, () =>
    new VmWaitError('VM_REMOVE_TIMEOUT', `VM ${id} is still being removed after ${Math.round(timing.timeoutMs / 1000)} s`),
  );
}
