import type { HandlerDeps } from './deps.ts';
import type { AppRecord } from '../src/state/record.ts';
import type { VmInfo } from '../src/vmm/messages.ts';
import { waitGone } from '../src/controller/vm-wait.ts';
import { beginOperation } from './intent.ts';

// Stop and remove one VM, and wait until the VMM has finished removing it (it keeps its host
// ports until then, docs/dstack.md §2). An unknown id means it is already gone.
export async function removeVm(vm: VmInfo, deps: HandlerDeps): Promise<void> {
  if (vm.status !== 'removing') {
    if (vm.status !== 'stopped' && vm.status !== 'exited') await deps.vmm.stopVm(vm.id);
    await deps.vmm.removeVm(vm.id);
  }
  await waitGone(deps.vmm, vm.id, deps.clock, { pollMs: deps.timing.pollMs, timeoutMs: deps.timing.removeTimeoutMs });
}

// Tear down an app whose file is gone for good: intent first, VM out, then its allowlist entry,
// then the record. Repeating any prefix of this after a crash is harmless (rule 18).
export async function teardownApp(record: AppRecord, vm: VmInfo | undefined, deps: HandlerDeps): Promise<void> {
  await beginOperation(record, { op: 'teardown', toHash: record.appliedHash ?? '', phase: 'removing' }, deps);
  if (vm) await removeVm(vm, deps);
  await forgetApp(record, deps);
}

// Drop what the supervisor owns for an app that has no VM: its allowlist entry and its record.
export async function forgetApp(record: AppRecord, deps: HandlerDeps): Promise<void> {
  await deps.allowlist.removeApp(record.appId);
  await deps.records.remove(record.name);
  await deps.report({ app: record.name, file: record.file, phase: 'removed' });
}
