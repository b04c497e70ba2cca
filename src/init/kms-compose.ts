// The KMS CVM as dstackup deploys it (docs/dstack.md §5.5): a local-key-provider CVM running
// dstack-kms in docker, its kms.toml written into the guest by an init_script heredoc, and its
// RPC port published on host loopback (and `[init] kms_host_address`) at the port init picked
// before the VMM first started.
import type { PortMapping, VmConfigurationInput } from '../vmm/messages.ts';
import { KMS_GUEST_PORT } from './derived-keys.ts';
import { renderError } from './errors.ts';
import type { Platform } from './platform.ts';

// The CVM's name; init finds a KMS it lost track of (or that destroy stopped) by it.
export const KMS_VM_NAME = 'dstack-kms';

// dstackup's pin (DEFAULT_KMS_IMAGE): new enough for `enforce_self_authorization` (dstack#651).
export const KMS_CONTAINER_IMAGE = 'dstacktee/dstack-kms:0.5.11';

// dstackup's sizes for the KMS CVM.
const KMS_RESOURCES = { vcpu: 4, memory: 8192, disk_size: 20 } as const;

const HEREDOC_END = 'DSTACK_KMS_TOML';

// The app-compose manifest of the KMS CVM on `platform`, embedding `kmsToml` byte for byte.
export function kmsAppCompose(kmsToml: string, kmsTomlPath: string, platform: Platform): string {
  if (kmsToml.split('\n').some((line) => line.trim() === HEREDOC_END)) {
    throw renderError(kmsTomlPath, `a line reading "${HEREDOC_END}" would end the heredoc that carries the file into the KMS CVM; remove it`);
  }
  const dockerCompose = [
    'services:',
    '  kms:',
    `    image: ${KMS_CONTAINER_IMAGE}`,
    '    volumes:',
    '      - kms-volume:/kms',
    '      - /var/run/dstack.sock:/var/run/dstack.sock',
    '      - /dstack/kms-config/kms.toml:/kms/kms.toml:ro',
    '    ports:',
    `      - "${KMS_GUEST_PORT}:${KMS_GUEST_PORT}"`,
    '    restart: unless-stopped',
    "    command: sh -c 'mkdir -p /kms/certs /kms/images && exec dstack-kms -c /kms/kms.toml'",
    'volumes:',
    '  kms-volume:',
    '',
  ].join('\n');
  const body = kmsToml.endsWith('\n') ? kmsToml : `${kmsToml}\n`;
  const initScript = `mkdir -p /dstack/kms-config\ncat > /dstack/kms-config/kms.toml <<'${HEREDOC_END}'\n${body}${HEREDOC_END}\n`;
  const manifest = {
    manifest_version: 2,
    name: KMS_VM_NAME,
    runner: 'docker-compose',
    docker_compose_file: dockerCompose,
    init_script: initScript,
    kms_enabled: false,
    gateway_enabled: false,
    // On TDX the KMS's own disk key comes from the SGX sealing key provider on this host; SNP
    // has no such provider (upstream dstack-cli-core src/config.rs `kms_app_compose`).
    local_key_provider_enabled: platform === 'tdx',
    public_logs: true,
    public_sysinfo: true,
    public_tcbinfo: true,
    no_instance_id: false,
    // The strict time wait hangs or reboot-loops the guest (docs/dstack.md §8).
    secure_time: false,
    allowed_envs: [],
  };
  return JSON.stringify(manifest, null, 2);
}

// CreateVm's request for the KMS CVM: no app_id and no kms_urls (it is the KMS).
export function kmsVmConfig(inputs: { image: string; composeFile: string; hostPort: number; hostAddress: string }): VmConfigurationInput {
  return {
    name: KMS_VM_NAME,
    image: inputs.image,
    compose_file: inputs.composeFile,
    ...KMS_RESOURCES,
    ports: kmsPortMappings(inputs.hostAddress, inputs.hostPort),
  };
}

// Where init itself reaches the KMS's published port.
export const KMS_LOOPBACK = '127.0.0.1';

// The host addresses the KMS RPC is published on. 127.0.0.1 always: this host's guests reach the
// KMS as 10.0.2.2, which QEMU's user networking sends to host loopback (libslirp
// `sotranslate_out`), and init reaches it there. `[init] kms_host_address` too, for other hosts'
// replicas, unless it is loopback itself or 0.0.0.0, which covers loopback (a second mapping
// beside a wildcard would clash in the VMM: main_service.rs `port_mappings_conflict`).
export function kmsHostAddresses(hostAddress: string): string[] {
  return hostAddress === KMS_LOOPBACK || hostAddress === '0.0.0.0' ? [hostAddress] : [KMS_LOOPBACK, hostAddress];
}

// The KMS CVM's port map, as CreateVm and UpdateVm take it.
export function kmsPortMappings(hostAddress: string, hostPort: number): PortMapping[] {
  return kmsHostAddresses(hostAddress).map((address) => ({ protocol: 'tcp', host_address: address, host_port: hostPort, vm_port: KMS_GUEST_PORT }));
}

// True when an app-compose manifest is a KMS CVM's (an app may also be called dstack-kms): on
// TDX it uses the local key provider, on SNP (none there) its init_script carries kms.toml.
export function isKmsCompose(composeFile: string): boolean {
  try {
    const manifest: unknown = JSON.parse(composeFile);
    if (typeof manifest !== 'object' || manifest === null) return false;
    if (!('name' in manifest) || manifest.name !== KMS_VM_NAME) return false;
    if ('local_key_provider_enabled' in manifest && manifest.local_key_provider_enabled === true) return true;
    return 'init_script' in manifest && typeof manifest.init_script === 'string' && manifest.init_script.includes(`<<'${HEREDOC_END}'`);
  } catch {
    return false;
  }
}
