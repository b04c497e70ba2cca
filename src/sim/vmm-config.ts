// The simulated VMM's configuration: what vmm.toml would say, plus the simulator's timing knobs.
import type { EnvEntry } from '../secrets/dotenv.ts';
import type { Clock } from '../clock.ts';
import type { RequestAppKeys, SetupGateway } from './vm-boot.ts';
import type { PortMappingConfig } from './vm-rules.ts';
import type { SimGpu, SimGpuSettings } from './vm-gpus.ts';

// A guest image as ListImages shows it; `digest` is digest.txt, the OS image hash in BootInfo.
export type SimImage = { name: string; version: string; digest: string; isDev?: boolean };

// The vmm.toml keys the simulated VMM acts on (read from a file by vmm-toml.ts, or given as
// options).
export type SimVmmSettings = {
  // Top-level `kms_url`: the KMS GetAppEnvEncryptPubKey asks; empty = "KMS is not configured".
  kmsUrl: string;
  // `run_path`: the VMs' work directories, which some error texts name.
  runPath: string;
  // `[cvm] kms_urls` / `gateway_urls`: what guests without their own get, and what GetMeta shows.
  kmsUrls: string[];
  gatewayUrls: string[];
  // `[cvm] cid_pool_size`, `max_allocable_vcpu`, `max_allocable_memory_in_mb` (GetMeta resources).
  cidPoolSize: number;
  maxAllocableVcpu: number;
  maxAllocableMemoryMb: number;
  // `[cvm.networking] mode` ("user" | "bridge" | "custom") and `bridge` (GetMeta networking).
  networking: { mode: string; bridge: string };
  // `[cvm.port_mapping]`.
  portMapping: PortMappingConfig;
  // `[cvm.gpu]`: which of the host's GPUs ListGpus offers, and whether "all" may be attached.
  gpu: SimGpuSettings;
  // `[gateway] base_domain`, `port`, `agent_port` (GetMeta gateway).
  gateway: { baseDomain: string; port: number; agentPort: number };
};

// The VMM's configuration and the simulator's timing knobs.
export type VmmStateOptions = {
  requestAppKeys: RequestAppKeys;
  // Open a VM's encrypted_env as its guest would (the simulated KMS's per-app key); absent =
  // a VM with encrypted_env fails to boot.
  openEnv?: (appId: string, encryptedEnvHex: string) => EnvEntry[];
  // A gateway-enabled guest's registration (the host wires its simulated gateways in); absent =
  // the guest's own checks, then no gateway answers at any URL.
  setupGateway?: SetupGateway;
  clock?: Clock;
  // Launch to boot_progress "done" (spread over the stages).
  bootDelayMs?: number;
  // ShutdownVm to "stopped".
  shutdownDelayMs?: number;
  // RemoveVm to the VM leaving Status and freeing its ports.
  removeDelayMs?: number;
  portMapping?: PortMappingConfig;
  images?: SimImage[];
  // Top-level `kms_url`, `[cvm].kms_urls` and `[cvm].gateway_urls`, as loaded at VMM start.
  kmsUrl?: string;
  kmsUrls?: string[];
  gatewayUrls?: string[];
  // The other vmm.toml keys (defaults: DEFAULT_SIM_SETTINGS); the fields above win over these.
  settings?: Partial<SimVmmSettings>;
  // `event_buffer_size`.
  maxEvents?: number;
  // The host's GPUs (none by default); `[cvm.gpu]` decides which the VMM offers.
  gpus?: SimGpu[];
};

// The image every simulated host has unless told otherwise.
export const DEFAULT_SIM_IMAGE: SimImage = {
  name: 'dstack-0.5.11',
  version: '0.5.11',
  digest: 'a3b1c9f0e4d2a6b8c0d1e2f3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7',
};

// dstackup's rendered range is tcp 1–20000; the simulator allows every port of both protocols by
// default, as init renders it (init/config-schema.ts `port_ranges`), because tests bind whatever
// port the kernel hands out and a gateway CVM maps UDP for WireGuard (docs/dstack.md "Gateway").
export const DEFAULT_SIM_PORT_MAPPING: PortMappingConfig = {
  enabled: true,
  address: '127.0.0.1',
  range: [
    { protocol: 'tcp', from: 1, to: 65535 },
    { protocol: 'udp', from: 1, to: 65535 },
  ],
};

// A simulated VMM's settings when nothing else is said: no KMS, every port allowed, and for the
// rest upstream's built-in values (dstack/vmm/vmm.toml at 312dc605), which our template keeps.
export const DEFAULT_SIM_SETTINGS: SimVmmSettings = {
  kmsUrl: '',
  runPath: '/var/lib/dstack/vm',
  kmsUrls: [],
  gatewayUrls: [],
  cidPoolSize: 1000,
  maxAllocableVcpu: 20,
  maxAllocableMemoryMb: 100_000,
  networking: { mode: 'user', bridge: '' },
  portMapping: DEFAULT_SIM_PORT_MAPPING,
  gpu: { enabled: false, listing: ['10de:2335'], include: [], exclude: [], allowAttachAll: true },
  gateway: { baseDomain: 'localhost', port: 8082, agentPort: 8090 },
};

// The KMS a simulated host without `[init] enabled` is configured with (vmm.toml `kms_url` and
// `[cvm] kms_urls`): there the operator runs the KMS elsewhere, and nothing of the simulator listens
// at this URL. Simulated guests never contact it (they get keys from the webhook) and
// GetAppEnvEncryptPubKey answers from the simulated KMS key, so any non-empty URL behaves alike.
export const SIM_EXTERNAL_KMS_URL = 'https://10.0.2.2:12001';

// The settings `options` give: DEFAULT_SIM_SETTINGS, then `settings`, then the named options.
export function settingsOf(options: VmmStateOptions): SimVmmSettings {
  const named = { kmsUrl: options.kmsUrl, kmsUrls: options.kmsUrls, gatewayUrls: options.gatewayUrls, portMapping: options.portMapping };
  const given = Object.fromEntries(Object.entries(named).filter(([, v]) => v !== undefined));
  return structuredClone({ ...DEFAULT_SIM_SETTINGS, ...options.settings, ...given });
}
