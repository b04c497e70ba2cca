// The simulated VMM's method table: one handler per prpc method, taking the decoded request in
// its JSON wire shape and returning the reply in the same shape (src/vmm/codec.ts encodes it).
import type * as z from 'zod';
import type { VmmMethod, vmmMethods } from '../vmm/codec.ts';
import type { EnvKeys } from './env-keys.ts';
import { VmmRejection } from './vm-rules.ts';
import { queryComposeHash, queryGpus, queryImages, queryInfo, queryMeta, queryStatus, SIM_VERSION } from './vmm-queries.ts';
import type { VmmState } from './vmm-state.ts';

type Spec<M extends VmmMethod> = (typeof vmmMethods)[M];

// A handler per method, typed by the codec's request and reply schemas.
export type VmmHandlers = {
  [M in VmmMethod]: (request: z.output<Spec<M>['requestSchema']>) => z.input<Spec<M>['responseSchema']>;
};

// Bind every method to the VM table and the env keys.
export function createVmmHandlers(state: VmmState, envKeys: EnvKeys): VmmHandlers {
  return {
    CreateVm: (req) => state.createVm(req),
    UpdateVm: (req) => state.updateVm(req),
    // Upstream's upgrade_app is update_vm under its older name.
    UpgradeApp: (req) => state.updateVm(req),
    ResizeVm: (req) => (state.resizeVm(req), {}),
    StartVm: ({ id }) => (state.startVm(id), {}),
    StopVm: ({ id }) => (state.stopVm(id), {}),
    ShutdownVm: ({ id }) => (state.shutdownVm(id), {}),
    RemoveVm: ({ id }) => (state.removeVm(id), {}),
    Status: (req) => queryStatus(state, req),
    GetInfo: ({ id }) => queryInfo(state, id),
    GetComposeHash: (req) => queryComposeHash(req),
    ListImages: () => queryImages(state),
    GetMeta: () => queryMeta(state),
    ListGpus: () => queryGpus(state),
    Version: () => SIM_VERSION,
    GetAppEnvEncryptPubKey: ({ app_id }) => {
      // upstream `kms_client`: the top-level kms_url must be set before the KMS is asked.
      if (state.settings().kmsUrl === '') throw new VmmRejection('KMS is not configured');
      return envKeys.publicKeyResponse(app_id, state.scheduler.clock.now());
    },
  };
}

// `GET /logs?id=`: the guest's reports as serial-console lines; undefined for an unknown VM.
export function vmLogLines(state: VmmState, id: string): string[] | undefined {
  const vm = state.find(id);
  if (!vm) return undefined;
  return [
    `[sim] ${vm.config.name} (${vm.id}) app_id=${vm.appId}`,
    ...vm.events.map((e) => `${new Date(e.timestamp).toISOString()} ${e.event}: ${e.body}`),
  ];
}
