// The read-only RPCs of the simulated VMM: Status, GetInfo, GetComposeHash, ListImages, GetMeta,
// Version. Shapes and filters follow upstream (`list_vms`, `get_meta`, docs/dstack.md §2).
import type {
  ComposeHash,
  GetInfoResponse,
  GetMetaResponse,
  ImageListResponse,
  StatusRequest,
  StatusResponse,
  VersionResponse,
  VmConfiguration,
} from '../vmm/messages.ts';
import { renderVmInfo, statusOf, type SimVm } from './vm-record.ts';
import { hashCompose, requireAppCompose, validateName } from './vm-rules.ts';
import type { VmmState } from './vmm-state.ts';

// What Version reports; the rev marks the simulator in logs.
export const SIM_VERSION: VersionResponse = { version: '0.5.11', rev: 'simulated' };

// Status: filter by ids, keyword (name, id, app id or image) and status; sort by creation;
// `total` counts the filtered set; page/page_size 0 means everything (pages count from 1).
export function queryStatus(state: VmmState, request: StatusRequest): StatusResponse {
  const wantedStatus = request.status.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const matches = state.list().filter((vm) => {
    if (request.ids.length > 0 && !request.ids.includes(vm.id)) return false;
    if (wantedStatus.length > 0 && !wantedStatus.includes(statusOf(vm))) return false;
    if (request.keyword === '') return true;
    return [vm.config.name, vm.id, vm.appId, vm.config.image].some((field) => field.includes(request.keyword));
  });
  const paged =
    request.page === 0 || request.page_size === 0
      ? matches
      : matches.slice((request.page - 1) * request.page_size, request.page * request.page_size);
  return {
    vms: paged.map((vm) => infoOf(state, vm, request.brief)),
    port_mapping_enabled: state.portMapping.enabled,
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

// GetMeta: the loaded kms/gateway URLs and the (reported, not enforced) resource limits.
export function queryMeta(state: VmmState): GetMetaResponse {
  const kmsUrls = state.loadedKmsUrls();
  return {
    kms: { url: kmsUrls[0] ?? '', urls: kmsUrls },
    gateway: {
      url: state.gatewayUrls[0] ?? '',
      base_domain: 'localhost',
      port: 8082,
      agent_port: 8090,
      urls: [...state.gatewayUrls],
    },
    resources: { max_cvm_number: 1000, max_allocable_vcpu: 64, max_allocable_memory_in_mb: 262144 },
    networking: { supported_modes: ['user'], default_mode: 'user', default_bridge: '', max_queues: 0, default_vhost: false },
  };
}

function infoOf(state: VmmState, vm: SimVm, brief: boolean): ReturnType<typeof renderVmInfo> {
  const version = state.imageOf(vm.config.image)?.version ?? '';
  return renderVmInfo(vm, state.scheduler.clock.now(), brief, version);
}
