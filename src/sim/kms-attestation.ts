// What a simulated KMS CVM proves about itself. On TDX a KMS's RA-TLS certificate carries a quote,
// and the KMS that checks it builds a BootInfo from it (`build_boot_info_for_attestation`) for
// `/bootAuth/kms`; mrAggregated there hashes MRTD, RTMR0-2 and RTMR3, which holds the compose hash
// and the instance id, so each KMS CVM has its own (docs/dstack.md "KMS replicas").
// Where it differs: nothing signs it, and the simulated value is sha256 over the platform's
// stand-in measurement and the launched compose's hash only: two KMS CVMs made alike measure
// alike, and a KMS made again after a simulated host restarts keeps its measurement (on TDX its
// new instance id changes it), so `npm run dev` hosts can be paired once.
import { createHash } from 'node:crypto';
import { postBootAuth, type BootInfoBody, type SimPlatform } from './app-keys.ts';
import type { AppKeyDecision } from './vm-boot.ts';
import type { SimVm } from './vm-record.ts';
import { hashCompose } from './vm-rules.ts';

// A simulated attestation: the BootInfo a verifier would build from the quote.
export type SimAttestation = BootInfoBody;

// The attestation of `vm` as it runs now, on `platform`, booted from the image `osImageHash`.
export function attestVm(vm: SimVm, osImageHash: string, platform: SimPlatform): SimAttestation {
  const composeHash = hashCompose(vm.launchedCompose);
  return {
    mrAggregated: createHash('sha256').update(`sim-mr-aggregated:${platform.mrAggregated}:${composeHash}`).digest('hex'),
    osImageHash,
    appId: vm.appId,
    composeHash,
    instanceId: vm.instanceId ?? '',
    deviceId: platform.deviceId,
    tcbStatus: platform.tcbStatus,
    advisoryIds: platform.advisoryIds,
  };
}

// May the KMS that presented `attestation` take part in a key handover? The webhook at `authUrl`
// decides (auth-simple: `kms.mrAggregated`, osImages, TCB, devices).
export function askKmsAllowed(authUrl: string, attestation: SimAttestation): Promise<AppKeyDecision> {
  return postBootAuth(authUrl, 'kms', attestation);
}
