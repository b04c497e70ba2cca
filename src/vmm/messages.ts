import * as z from 'zod';

// The dstack-vmm messages in their JSON wire shape (docs/dstack.md §1.2): snake_case proto field
// names, `bytes` as lowercase hex without 0x, 64-bit integers as numbers. Every field defaults like
// proto3 (missing = zero value), so a schema accepts both a partial request and whatever a newer or
// older VMM replies; `optional` proto fields stay absent when unset. Field numbers live in
// proto/vmm_rpc.proto; src/vmm/codec.ts converts these objects to and from protobuf binary. Every
// object here has exactly the fields of its proto message (test/vmm/messages-proto.test.ts).

const uint32 = z.number().int().min(0).max(0xffff_ffff);
// uint64 on the wire; the values we see (ms timestamps) fit a double exactly.
const uint64 = z.number().int().min(0);
// serde_human_bytes on the VMM side calls hex::decode, which rejects a 0x prefix.
const hexBytes = z.string().regex(/^(?:[0-9a-f]{2})*$/, 'expected lowercase hex without 0x');

const str = z.string().default('');
const bool = z.boolean().default(false);
const u32 = uint32.default(0);
const strings = z.array(z.string()).default([]);

// One forwarded host port (vmm.PortMapping). `protocol` is "tcp" or "udp", lowercase.
export const PortMappingSchema = z.object({
  protocol: str,
  host_port: u32,
  vm_port: u32,
  // UpdateVm fails with "Invalid host address" on an empty value: always send it.
  host_address: str,
});
export type PortMapping = z.infer<typeof PortMappingSchema>;

// vmm.GpuConfig: attach_mode "listed" | "all".
export const GpuConfigSchema = z.object({
  gpus: z.array(z.object({ slot: str })).default([]),
  attach_mode: str,
});
export type GpuConfig = z.infer<typeof GpuConfigSchema>;

// vmm.NetworkingConfig: per-VM networking override, mode "user" | "bridge".
export const NetworkingConfigSchema = z.object({
  mode: str,
  bridge_name: str,
});
export type NetworkingConfig = z.infer<typeof NetworkingConfigSchema>;

// vmm.VmConfiguration: CreateVm and GetComposeHash input, and VmInfo.configuration.
export const VmConfigurationSchema = z.object({
  name: str,
  image: str,
  compose_file: str,
  vcpu: u32,
  memory: u32,
  disk_size: u32,
  ports: z.array(PortMappingSchema).default([]),
  encrypted_env: hexBytes.default(''),
  app_id: z.string().optional(),
  user_config: str,
  hugepages: bool,
  pin_numa: bool,
  gpus: GpuConfigSchema.optional(),
  kms_urls: strings,
  gateway_urls: strings,
  stopped: bool,
  no_tee: bool,
  networking: NetworkingConfigSchema.optional(),
  networks: z.array(NetworkingConfigSchema).default([]),
  simulated_tee: z.string().optional(),
});
export type VmConfiguration = z.infer<typeof VmConfigurationSchema>;
export type VmConfigurationInput = z.input<typeof VmConfigurationSchema>;

// vmm.UpdateVmRequest (UpdateVm and UpgradeApp): empty values and false update_* flags mean "leave
// unchanged" (docs/dstack.md §2.2).
export const UpdateVmRequestSchema = z.object({
  id: str,
  compose_file: str,
  encrypted_env: hexBytes.default(''),
  user_config: str,
  update_ports: bool,
  ports: z.array(PortMappingSchema).default([]),
  update_kms_urls: bool,
  kms_urls: strings,
  update_gateway_urls: bool,
  gateway_urls: strings,
  gpus: GpuConfigSchema.optional(),
  vcpu: uint32.optional(),
  memory: uint32.optional(),
  disk_size: uint32.optional(),
  image: z.string().optional(),
  no_tee: z.boolean().optional(),
  update_networking: bool,
  networks: z.array(NetworkingConfigSchema).default([]),
});
export type UpdateVmRequest = z.infer<typeof UpdateVmRequestSchema>;
export type UpdateVmRequestInput = z.input<typeof UpdateVmRequestSchema>;

// vmm.Id: a VM id (UUID) in requests; CreateVm's reply id; UpdateVm's reply app_id.
export const IdSchema = z.object({ id: str });
export type Id = z.infer<typeof IdSchema>;

// google.protobuf.Empty: the reply of StartVm/StopVm/ShutdownVm/RemoveVm.
export const EmptySchema = z.object({});
export type Empty = z.infer<typeof EmptySchema>;

// vmm.StatusRequest: page or page_size 0 returns every VM.
export const StatusRequestSchema = z.object({
  ids: strings,
  brief: bool,
  keyword: str,
  page: u32,
  page_size: u32,
});
export type StatusRequest = z.infer<typeof StatusRequestSchema>;
export type StatusRequestInput = z.input<typeof StatusRequestSchema>;

// vmm.GuestEvent: one entry of the VM's event ring buffer.
export const GuestEventSchema = z.object({
  event: str,
  body: str,
  // Milliseconds since the Unix epoch.
  timestamp: uint64.default(0),
});
export type GuestEvent = z.infer<typeof GuestEventSchema>;

// vmm.NetworkInterfaceStatus: a resolved NIC as the VMM reports it.
export const NetworkInterfaceStatusSchema = z.object({
  mode: str,
  backend: str,
  mac: str,
  bridge_name: z.string().optional(),
  netdev_id: z.string().optional(),
});
export type NetworkInterfaceStatus = z.infer<typeof NetworkInterfaceStatusSchema>;

// vmm.VmInfo: `status` is running | exited | stopping | stopped | removing (docs/dstack.md §2.3);
// `configuration` is absent in a brief Status reply.
export const VmInfoSchema = z.object({
  id: str,
  name: str,
  status: str,
  uptime: str,
  app_url: z.string().optional(),
  app_id: str,
  instance_id: z.string().optional(),
  configuration: VmConfigurationSchema.optional(),
  exited_at: z.string().optional(),
  boot_progress: str,
  boot_error: str,
  shutdown_progress: str,
  image_version: str,
  events: z.array(GuestEventSchema).default([]),
  interfaces: z.array(NetworkInterfaceStatusSchema).default([]),
});
export type VmInfo = z.infer<typeof VmInfoSchema>;

// vmm.StatusResponse.
export const StatusResponseSchema = z.object({
  vms: z.array(VmInfoSchema).default([]),
  port_mapping_enabled: bool,
  total: u32,
});
export type StatusResponse = z.infer<typeof StatusResponseSchema>;

// vmm.GetInfoResponse: `info` is present only when `found`.
export const GetInfoResponseSchema = z.object({
  found: bool,
  info: VmInfoSchema.optional(),
});
export type GetInfoResponse = z.infer<typeof GetInfoResponseSchema>;

// vmm.ComposeHash: 64 lowercase hex characters, sha256 of the exact compose_file string.
export const ComposeHashSchema = z.object({ hash: str });
export type ComposeHash = z.infer<typeof ComposeHashSchema>;

// vmm.ImageInfo: `name` is the image directory name (docs/dstack.md §7).
export const ImageInfoSchema = z.object({
  name: str,
  description: str,
  version: str,
  is_dev: bool,
});
export type ImageInfo = z.infer<typeof ImageInfoSchema>;

// vmm.ImageListResponse.
export const ImageListResponseSchema = z.object({
  images: z.array(ImageInfoSchema).default([]),
});
export type ImageListResponse = z.infer<typeof ImageListResponseSchema>;

// vmm.AppId: the app id as hex bytes.
export const AppIdSchema = z.object({ app_id: hexBytes.default('') });
export type AppId = z.infer<typeof AppIdSchema>;

// vmm.PublicKeyResponse: the KMS env-encryption key for an app plus its signatures.
export const PublicKeyResponseSchema = z.object({
  public_key: hexBytes.default(''),
  signature: hexBytes.default(''),
  // Seconds since the Unix epoch.
  timestamp: uint64.default(0),
  signature_v1: hexBytes.default(''),
});
export type PublicKeyResponse = z.infer<typeof PublicKeyResponseSchema>;

// vmm.GetMetaResponse: `kms.urls` is the loaded [cvm].kms_urls, the check that a VMM restart
// picked up new KMS URLs. Sub-messages default to empty ones so callers need no null checks.
export const GetMetaResponseSchema = z.object({
  kms: z.object({ url: str, urls: strings }).prefault({}),
  gateway: z
    .object({ url: str, base_domain: str, port: u32, agent_port: u32, urls: strings })
    .prefault({}),
  resources: z
    .object({ max_cvm_number: u32, max_allocable_vcpu: u32, max_allocable_memory_in_mb: u32 })
    .prefault({}),
  networking: z
    .object({
      supported_modes: strings,
      default_mode: str,
      default_bridge: str,
    })
    .prefault({}),
});
export type GetMetaResponse = z.infer<typeof GetMetaResponseSchema>;

// vmm.VersionResponse.
export const VersionResponseSchema = z.object({ version: str, rev: str });
export type VersionResponse = z.infer<typeof VersionResponseSchema>;

// vmm.ResizeVmRequest: ResizeVm (deprecated upstream for UpdateVm, still what vmm-cli.py `resize`
// and `update --vcpu/--memory/--disk/--image` send). Unset fields stay as they are.
export const ResizeVmRequestSchema = z.object({
  id: str,
  vcpu: uint32.optional(),
  memory: uint32.optional(),
  disk_size: uint32.optional(),
  image: z.string().optional(),
});
export type ResizeVmRequest = z.infer<typeof ResizeVmRequestSchema>;

// vmm.GpuInfo: one GPU the host could attach.
export const GpuInfoSchema = z.object({
  slot: str,
  product_id: str,
  description: str,
  is_free: bool,
});
export type GpuInfo = z.infer<typeof GpuInfoSchema>;

// vmm.ListGpusResponse: empty while `[cvm.gpu] enabled = false`.
export const ListGpusResponseSchema = z.object({
  gpus: z.array(GpuInfoSchema).default([]),
  allow_attach_all: bool,
});
export type ListGpusResponse = z.infer<typeof ListGpusResponseSchema>;
