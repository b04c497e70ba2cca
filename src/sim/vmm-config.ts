import type { EnvEntry } from '../secrets/dotenv.ts';
// The simulated VMM's configuration: what vmm.toml would say, plus the simulator's timing knobs.
import type { Clock } from '../clock.ts';
import type { RequestAppKeys, SetupGateway } from './vm-boot.ts';
import type { PortMappingConfig } from './vm-rules.ts';

// A guest image as ListImages shows it; `digest` is digest.txt, the OS image hash in BootInfo.
export type SimImage = { name: string; version: string; digest: string; isDev?: boolean };

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
  // `[cvm].kms_urls` and `[cvm].gateway_urls`, as loaded at VMM start.
  kmsUrls?: string[];
  gatewayUrls?: string[];
  // `event_buffer_size`.
  maxEvents?: number;
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
