// The read-only RPCs of the simulated VMM: Status, GetInfo, GetComposeHash, ListImages, GetMeta,
// ListGpus, Version. Shapes and filters follow upstream (`list_vms`, `get_meta`, `list_gpus`,
// docs/dstack.md §2); GetMeta and ListGpus answer from the loaded vmm.toml settings.
import type {
  ComposeHash,
  GetInfoResponse,
  GetMetaResponse,
  ImageListResponse,
  ListGpusResponse,
  StatusRequest,
  StatusResponse,
  VersionResponse,
  VmConfiguration,
} from '../vmm/messages.ts';
import { renderVmInfo, type SimVm } from './vm-record.ts';
import { listSimGpus } from './vm-gpus.ts';
import { hashCompose, requireAppCompose, validateName } from './vm-rules.ts';
import type { VmmState } from './vmm-state.ts';

// What Version reports; the rev marks the simulator in logs.
export const SIM_VERSION: VersionResponse = { version: '0.5.11', rev: 'simulated' };

// Status: filter by ids and keyword (name, id, app id or image); sort by creation; `total`
// counts the filtered set; page/page_size 0 means everything (pages count from 1).
export function queryStatus(state: VmmState, request: StatusRequest): StatusResponse {
  const matches = state.list().filter((vm) => {
    if (request.ids.length > 0 && !request.ids.includes(vm.id)) return false;
    if (request.keyword === '') return true;
    return [vm.config.name, vm.id, vm.appId, vm.config.image].some((field) => field.includes(request.keyword));
  });
  const paged =
    request.page === 0 || request.page_size === 0
      ? matches
      : matches.slice((request.page - 1) * request.page_size, request.page * request.page_size);
  return {
    vms: paged.map((vm) => infoOf(state, vm, request.brief)),
    port_mapping_enabled: state.settings().portMapping.enabled,
    total: matches.length,
  };
}

// GetInfo: the full VmInfo, or found=false for an unknown id (not an error upstream).
export function queryInfo(state: VmmState, id: string): GetInfoResponse {
  const vm = state.find(id);
  return vm ? { found: true, info: infoOf(state, vm, false) } : { found: false };
}

// GetComposeHash: validate name and compose, hash the exact string. No side effects.
export function queryComposeHash(request: VmConfiguration): ComposeHash {
  validateName(request.name);
  requireAppCompose(request.compose_file, 'Invalid compose file');
  return { hash: hashCompose(request.compose_file) };
}

// ListImages: name = directory name, description = the metadata as JSON.
export function queryImages(state: VmmState): ImageListResponse {
  return {
    images: state.images.map((image) => ({
      name: image.name,
      description: JSON.stringify({ kernel: 'bzImage', initrd: 'initramfs.cpio.gz', version: image.version }),
      version: image.version,
      is_dev: image.isDev ?? false,
    })),
  };
}

// GetMeta: the loaded `[cvm]` kms/gateway URLs, `[gateway]`, the (reported, not enforced)
// resource limits and the networking defaults. Bridge mode is never offered: upstream adds it
// only when the bridge config validates or the host has a bridge interface, and the simulator
// runs no NIC at all.
export function queryMeta(state: VmmState): GetMetaResponse {
  const settings = state.settings();
  const { kmsUrls, gatewayUrls, gateway, networking } = settings;
  return {
    kms: { url: kmsUrls[0] ?? '', urls: kmsUrls },
    gateway: { url: gatewayUrls[0] ?? '', base_domain: gateway.baseDomain, port: gateway.port, agent_port: gateway.agentPort, urls: gatewayUrls },
    resources: {
      max_cvm_number: settings.cidPoolSize,
      max_allocable_vcpu: settings.maxAllocableVcpu,
      max_allocable_memory_in_mb: settings.maxAllocableMemoryMb,
    },
    networking: {
      supported_modes: ['user'],
      default_mode: networking.mode === 'custom' ? '' : networking.mode,
      default_bridge: networking.bridge,
    },
  };
}

// ListGpus: the host's GPUs `[cvm.gpu]` offers (none while it is off), each free unless a
// running VM holds it; the flag is the configured one either way.
export function queryGpus(state: VmmState): ListGpusResponse {
  const { gpu } = state.settings();
  return { gpus: listSimGpus(state.gpus, gpu, state.busyGpus()), allow_attach_all: gpu.allowAttachAll };
}

function infoOf(state: VmmState, vm: SimVm, brief: boolean): ReturnType<typeof renderVmInfo> {
  const version = state.imageOf(vm.config.image)?.version ?? '';
  return renderVmInfo(vm, state.scheduler.clock.now(), brief, version);
}
