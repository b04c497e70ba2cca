// The guest agent's Info as dstack-vmm proxies it at `/guest/Info` (dstack/vmm/src/
// guest_api_service.rs), answered from the simulated attestation (kms-attestation.ts).
import { attestVm } from './kms-attestation.ts';
import type { SimPlatform } from './app-keys.ts';
import type { VmmState } from './vmm-state.ts';

const SIM_GUEST_VERSION = '0.5.11 (simulated)';

// The guest agent's Info (dstack/guest-agent/src/rpc_service.rs): tcb_info is a JSON string, and
// empty unless the app-compose sets `public_tcbinfo`; an unbooted guest does not answer.
export function guestInfo(state: VmmState, id: string, platform: SimPlatform): Record<string, unknown> | string {
  const vm = state.find(id);
  if (vm === undefined) return `VM not found: ${id}`;
  if (!vm.running || vm.bootProgress !== 'done') return `the guest agent of VM ${id} is not reachable`;
  const attestation = attestVm(vm, state.imageOf(vm.config.image)?.digest ?? '', platform);
  const publicTcb = publicTcbInfo(vm.launchedCompose);
  const tcbInfo = { mr_aggregated: attestation.mrAggregated, os_image_hash: attestation.osImageHash, compose_hash: attestation.composeHash, device_id: attestation.deviceId };
  return { version: SIM_GUEST_VERSION, app_id: vm.appId, instance_id: vm.instanceId ?? '', app_cert: '', tcb_info: publicTcb ? JSON.stringify(tcbInfo) : '', device_id: attestation.deviceId };
}

function publicTcbInfo(composeFile: string): boolean {
  try {
    return (JSON.parse(composeFile) as { public_tcbinfo?: unknown }).public_tcbinfo === true;
  } catch {
    return false;
  }
}
