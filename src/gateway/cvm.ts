// The gateway CVM for one host (issue 14, "Enable"): its encrypted env, its URLs, its host ports
// and its CreateVm request, all from gateway.toml, the kept secrets and where guests see the host.
// Pure: no VMM calls; sealing the env (src/secrets/seal.ts) is the caller's, as is allowlisting
// the compose hash before CreateVm (docs/dstack.md "Gateway").
import { composeHashOf } from '../app/manifest.ts';
import type { EnvEntry } from '../secrets/dotenv.ts';
import type { PortMapping, VmConfigurationInput } from '../vmm/messages.ts';
import { GATEWAY_VM_NAME, renderGatewayAppCompose } from './compose.ts';
import { gatewayAdminPort, type GatewayConfig } from './schema.ts';
import type { GatewaySecrets } from './secrets.ts';

// The gateway's ports inside its CVM (gateway-v0.5.8 builder/entrypoint.sh: `address =
// "0.0.0.0:8000"`, admin 8001, WireGuard `listen_port = 51820`, proxy PROXY_LISTEN_PORT).
const GUEST_RPC_PORT = 8000;
const GUEST_ADMIN_PORT = 8001;
const GUEST_WIREGUARD_PORT = 51820;
const GUEST_PROXY_PORT = 443;

// The admin API's host address. Not 127.0.0.1: under user-mode networking every CVM reaches the
// host's 127.0.0.1 as 10.0.2.2 (that is how apps reach the KMS), and the 0.5.8 admin API has no
// authentication, so any app on the host could reconfigure the gateway through it. QEMU's
// user-mode stack maps 10.0.2.2 to 127.0.0.1 only; another loopback address (all of 127/8 is
// local on Linux, no setup needed) is reachable from the host and from no CVM.
const ADMIN_HOST_ADDRESS = '127.0.0.2';

// The WireGuard network of upstream's v0.5.8 deploy script for SUBNET_INDEX 0:
// `10.$((SUBNET_INDEX + 240)).0` with the gateway at .1/12, its own /32 reserved and clients
// given addresses from the /16 (gateway/dstack-app/deploy-to-vmm.sh). Later scripts moved to
// 10.8.x/16 and /18 ranges to fit four cluster nodes; one node needs neither.
const WIREGUARD = { ip: '10.240.0.1/12', reservedNet: '10.240.0.1/32', clientRange: '10.240.0.0/16' } as const;

// What the gateway's env, URLs and ports are made of.
export type GatewayCvmInputs = {
  config: GatewayConfig;
  secrets: GatewaySecrets;
  // The host as a CVM sees it under user-mode networking ([init] guest_host_address, 10.0.2.2).
  guestHost: string;
  // A container image other than the pinned one (an upgrade); the pinned one when unset.
  containerImage?: string;
};

// The gateway's RPC URL, which app CVMs get as `gateway_urls` and the gateway as MY_URL.
// Its host is the address guests reach the host at, as an IP literal, not `<host-ip>.nip.io` or
// `gateway.<base domain>`:
// - the guest's registration checks the RPC certificate's name against this host, and the
//   certificate names RPC_DOMAIN and MY_URL's host (gateway main.rs maybe_gen_certs); a KMS from
//   0.5.11 on signs an IP-address alt name as an IP SAN (ra-tls cert.rs, rcgen), exactly what
//   already lets every app reach the KMS at https://10.0.2.2:<port>;
// - every CVM that registers runs on this host (single-host topology, docs/dstack.md "Tier 2: the gateway CVM"), so
//   10.0.2.2 needs no DNS (no nip.io lookup from the guest, no record for gateway.<domain>) and
//   no hairpin NAT through the public address;
// - it works the same with a domain and in no-domain mode, and does not change with public_ip.
export function gatewayRpcUrl(config: GatewayConfig, guestHost: string): string {
  return `https://${guestHost}:${config.rpc_port}`;
}

// `gateway_urls` of an app VM that uses the gateway.
export function gatewayUrls(config: GatewayConfig, guestHost: string): string[] {
  return [gatewayRpcUrl(config, guestHost)];
}

// Where the host reaches the admin API (plain HTTP, like upstream's).
export function gatewayAdminUrl(config: GatewayConfig): string {
  return `http://${ADMIN_HOST_ADDRESS}:${gatewayAdminPort(config)}`;
}

// The env the gateway CVM is given, sorted by name (the caller seals it for the gateway's app id).
// The names are those of upstream's `.app_env` that the v0.5.8 image reads; not ADMIN_API_TOKEN,
// which only images after v0.5.11 read (and their entrypoint exits without it).
export function gatewayEnv(inputs: GatewayCvmInputs): EnvEntry[] {
  const { config, secrets, guestHost } = inputs;
  const entries: EnvEntry[] = [
    // What app CVMs dial for WireGuard (UDP on rpc_port): the host as they see it, since they all
    // run here; QEMU presents the host's packets to them as coming from 10.0.2.2, the one source
    // their WireGuard accepts (docs/dstack.md "Tier 2: the gateway CVM", Ports).
    { key: 'WG_ENDPOINT', value: `${guestHost}:${config.rpc_port}` },
    { key: 'MY_URL', value: gatewayRpcUrl(config, guestHost) },
    // One node: no cluster to join.
    { key: 'BOOTNODE_URL', value: '' },
    { key: 'WG_IP', value: WIREGUARD.ip },
    { key: 'WG_RESERVED_NET', value: WIREGUARD.reservedNet },
    { key: 'WG_CLIENT_RANGE', value: WIREGUARD.clientRange },
    { key: 'APP_LAUNCH_TOKEN', value: secrets.appLaunchToken() },
    // A non-empty RPC_DOMAIN makes the gateway ask for its RPC certificate (see gatewayRpcUrl).
    { key: 'RPC_DOMAIN', value: guestHost },
    { key: 'NODE_ID', value: String(secrets.nodeId) },
    { key: 'PROXY_LISTEN_PORT', value: String(GUEST_PROXY_PORT) },
  ];
  return entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

// The gateway CVM's measured parts and its env: the manifest lists exactly the env's names.
export function renderGatewayCvm(inputs: GatewayCvmInputs): { appCompose: string; composeHash: string; env: EnvEntry[] } {
  const env = gatewayEnv(inputs);
  const appCompose = renderGatewayAppCompose({
    containerImage: inputs.containerImage,
    envNames: env.map((entry) => entry.key),
    launchToken: inputs.secrets.appLaunchToken(),
  });
  return { appCompose, composeHash: composeHashOf(appCompose), env };
}

// The host ports the gateway CVM publishes, as upstream's deploy script maps them in user mode
// (there the RPC and WireGuard also share one port number, 9202): the RPC and WireGuard on every
// interface, since remote clients and the app CVMs (through 10.0.2.2) use them; the HTTPS proxy
// on every interface, it is the public side; the admin API on ADMIN_HOST_ADDRESS only. No
// guest-agent port: the supervisor reads the CVM's logs through the VMM.
export function gatewayPorts(config: GatewayConfig): PortMapping[] {
  return [
    { protocol: 'tcp', host_address: '0.0.0.0', host_port: config.rpc_port, vm_port: GUEST_RPC_PORT },
    { protocol: 'udp', host_address: '0.0.0.0', host_port: config.rpc_port, vm_port: GUEST_WIREGUARD_PORT },
    { protocol: 'tcp', host_address: '0.0.0.0', host_port: config.proxy_port, vm_port: GUEST_PROXY_PORT },
    { protocol: 'tcp', host_address: ADMIN_HOST_ADDRESS, host_port: gatewayAdminPort(config), vm_port: GUEST_ADMIN_PORT },
  ];
}

// CreateVm's request for the gateway CVM. `encryptedEnv` is gatewayEnv sealed for
// `secrets.appId`; `image` the guest image ([cvm] image, or the one init installed).
export function gatewayVmConfig(inputs: {
  config: GatewayConfig;
  secrets: GatewaySecrets;
  image: string;
  appCompose: string;
  encryptedEnv: string;
  kmsUrls: readonly string[];
}): VmConfigurationInput {
  const { config } = inputs;
  return {
    name: GATEWAY_VM_NAME,
    image: inputs.image,
    compose_file: inputs.appCompose,
    vcpu: config.cvm.vcpu,
    memory: config.cvm.memory,
    disk_size: config.cvm.disk,
    ports: gatewayPorts(config),
    encrypted_env: inputs.encryptedEnv,
    // Chosen, not derived from the compose hash, so the gateway keeps its identity, its keys and
    // its disk (certificates, ACME account) across image and compose changes.
    app_id: inputs.secrets.appId,
    kms_urls: [...inputs.kmsUrls],
    // The gateway does not register with a gateway (gateway_enabled is false).
    gateway_urls: [],
  };
}
