// A VM found by name and app id that no record of ours names: made by upstream's `dstack deploy`
// from the same compose file and name (same manifest, so the same app id: issue 16), or by this
// supervisor before its record was saved or after it was lost. It is taken over as it is.
import type { AppRecord } from '../src/state/record.ts';
import type { VmInfo } from '../src/vmm/messages.ts';
import type { DesiredSpec } from './plan.ts';

// A record for a VM found by name and app id with no record of ours.
export function adopt(name: string, file: string, vm: VmInfo): AppRecord {
  return { name, file, appId: vm.app_id, vmId: vm.id, registeredHashes: [], phase: 'pending' };
}

// The journal line's reason when a booted VM no record of ours names becomes the app's.
export function takeoverReason(vm: VmInfo): string {
  return (
    `VM ${vm.id} (app id ${vm.app_id}) is named by no record of ours (made by \`dstack deploy\` from this file ` +
    'and name, or by this supervisor with its record lost or not yet saved): taken over as it runs, nothing changed'
  );
}

// `vm` with the kms_urls its guest boots with. A VM created without its own (upstream's
// `dstack deploy` sends none) gets the VMM's `[cvm] kms_urls` at every start (docs/dstack.md §2.1):
// when those are the app's, the VM needs no UpdateVm and restart for them. Asked of the VMM
// (GetMeta) only for such a VM.
export async function withBootKmsUrls(vm: VmInfo, spec: Pick<DesiredSpec, 'kmsUrls'>, loadedKmsUrls: () => Promise<string[]>): Promise<VmInfo> {
  const cfg = vm.configuration;
  if (!cfg || cfg.kms_urls.length > 0 || spec.kmsUrls.length === 0) return vm;
  return { ...vm, configuration: { ...cfg, kms_urls: await loadedKmsUrls() } };
}
