// The simulated dstack-gateway inside the `dstack-gateway` CVM, as the host and the app guests
// reach it: through the VM's published ports (docs/dstack.md "Gateway" and "Tier 2: the gateway CVM", Ports).
// A gateway CVM is a VM named `dstack-gateway` whose launched compose uses the KMS. While its
// process runs, the forwards of guest ports 8000 (RPC), 8001 (admin) and 443 (HTTPS proxy) are
// bound and reset connections; once the guest reports boot `done`, a simulated gateway
// (gateway.ts) starts inside, on loopback ports the forwards relay to, with:
// - the admin token from the decrypted env's ADMIN_API_TOKEN, where the CVM's entrypoint reads it.
//   Without one the admin API takes no credential, as gateway images from before admin
//   authentication (#796; ≤ 0.5.11) serve it; HEAD's entrypoint would exit instead.
// - certificates signed by the host CA (init's `<config_dir>/tls/ca.{crt,key}`) in place of
//   Let's Encrypt, so `curl --cacert <that ca.crt>` trusts the proxy.
// - `MY_URL`, `RPC_DOMAIN` and `NODE_ID` from the env when set.
// Stopping the VM closes all of it. The gateway's store (WaveKV on the CVM's encrypted disk:
// certificates, DNS credentials, ZT-domains, instances) and its fault hooks are kept per VM and
// handed to the next launch; they go with the VM's removal.
//
// Guests register through `registerAt`: a URL's port names the gateway whose RPC forward has that
// host port. The host part is not resolved (guests reach the host as 10.0.2.2; the e2e suite
// names it <ip>.nip.io). The guest's check of the gateway certificate's app id is kept: it must
// be a substring of the keys' gateway app id, lower-cased ("any": no check).
// Differences: no WireGuard (the udp 51820 forward is not bound); the guest agent port (8090) is
// a plain listener like any app port; a gateway that cannot start (host CA unreadable) leaves its
// ports resetting, like a crash-looping container, and says why in `failure`.
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import type { Issued } from '../init/tls.ts';
import type { EnvEntry } from '../secrets/dotenv.ts';
import { startSimGateway, type SimGateway } from './gateway.ts';
import { createGatewayFaults, type GatewayFaultHooks, type GatewayFaults } from './gateway-faults.ts';
import { unreachableError, type RegisterAt } from './gateway-guest.ts';
import { removeInstance } from './gateway-registry.ts';
import { createGatewayStore, type GatewayStore } from './gateway-store.ts';
import type { BoundServer } from './http-server.ts';
import { startTcpForward } from './tcp-forward.ts';
import type { SimVm } from './vm-record.ts';
import { parseAppCompose, type HostPort } from './vm-rules.ts';
import type { VmmState } from './vmm-state.ts';

// The CVM name upstream's deploy script hardcodes (`--name dstack-gateway`).
export const SIM_GATEWAY_VM_NAME = 'dstack-gateway';
// Guest ports of the gateway CVM (docs/dstack.md "Tier 2: the gateway CVM", Ports).
export const GATEWAY_GUEST_PORTS = { rpc: 8000, admin: 8001, proxy: 443 } as const;

// What the gateway CVMs need from the host.
export type GatewayCvmOptions = {
  // The host CA, read when a gateway starts.
  loadCa: () => Promise<Issued>;
  // The env the VM's guest booted with, decrypted.
  openEnv: (vm: SimVm) => EnvEntry[];
  // How long one certificate issuance takes.
  issueDelayMs: number;
};

// A running gateway as the supervisor reaches it: URLs on the published host ports ('' / 0 for a
// port the VM does not publish), the token it requires ('' = none), and its data for tests.
export type SimGatewayView = {
  vmId: string;
  adminUrl: string;
  rpcUrl: string;
  proxyPort: number;
  adminToken: string;
  store: GatewayStore;
  faults: GatewayFaults;
  logs: () => string[];
};

// Every gateway CVM's simulation.
export type GatewayCvms = {
  // True for a forward the gateway binds (so the plain port listeners leave it alone).
  serves: (vm: SimVm, port: HostPort) => boolean;
  registerAt: RegisterAt;
  // Drop an instance from the gateway VM's store, running or not.
  unregister: (gatewayVmId: string, instanceId: string) => void;
  // The gateway of that VM's current launch once it runs.
  running: (vmId: string) => SimGatewayView | undefined;
  // Why the current launch's gateway could not start, if it could not.
  failure: (vmId: string) => string | undefined;
  // The VM's gateway faults (kept across its launches); undefined before its first launch.
  faults: (vmId: string) => GatewayFaults | undefined;
  // The ZT domains of every gateway that runs now (what the simulated DNS answers for).
  domains: () => string[];
  // Called whenever a VM's gateway starts, fails to start or stops; returns unsubscribe.
  onChange: (listener: (change: GatewayChange, vmId: string) => void) => () => void;
  close: () => Promise<void>;
};

// What happened to a VM's gateway.
export type GatewayChange = 'running' | 'failed' | 'stopped';

type Kept = { store: GatewayStore; hooks: GatewayFaultHooks };
type Launch = { vmId: string; forwards: Promise<BoundServer | undefined>[]; starting: boolean; gateway?: SimGateway; view?: SimGatewayView; failure?: string };

// Follow `state` and run one gateway per launch of a gateway CVM.
export function startGatewayCvms(state: VmmState, options: GatewayCvmOptions): GatewayCvms {
  const launches = new Map<string, Launch>();
  const kept = new Map<string, Kept>();
  const events = new EventEmitter<{ change: [GatewayChange, string] }>();
  let closed = false;
  const keyOf = (vm: SimVm): string => `${vm.id} ${vm.generation}`;
  const current = (key: string, launch: Launch): boolean => !closed && launches.get(key) === launch;
  const keep = (vmId: string): Kept => {
    const entry = kept.get(vmId) ?? { store: createGatewayStore(), hooks: createGatewayFaults() };
    kept.set(vmId, entry);
    return entry;
  };
  const serves = (vm: SimVm, port: HostPort): boolean =>
    port.protocol === 'tcp' && Object.values(GATEWAY_GUEST_PORTS).some((p) => p === port.vm_port) && isGatewayCvm(vm);

  const open = (vm: SimVm, key: string): Launch => {
    keep(vm.id);
    const launch: Launch = { vmId: vm.id, forwards: [], starting: false };
    launch.forwards = vm.launchedPorts
      .filter((p) => serves(vm, p))
      .map((p) =>
        startTcpForward({ host: p.host_address, port: p.host_port }, () => {
          const port = launch.gateway === undefined ? undefined : innerPort(launch.gateway, p.vm_port);
          return port === undefined ? undefined : { host: '127.0.0.1', port };
        }).catch((err: unknown) => {
          if (current(key, launch)) state.crashVm(vm.id, `qemu: could not set up host forwarding rule 'tcp:${p.host_address}:${p.host_port}': ${err instanceof Error ? err.message : String(err)}`);
          return undefined;
        }),
      );
    return launch;
  };

  const start = async (vm: SimVm, key: string, launch: Launch): Promise<void> => {
    try {
      const ca = await options.loadCa();
      const env = new Map(options.openEnv(vm).map((e) => [e.key, e.value]));
      if (!current(key, launch)) return;
      const { store, hooks } = keep(vm.id);
      const adminToken = env.get('ADMIN_API_TOKEN') ?? '';
      const published = publishedUrls(vm.launchedPorts);
      const gateway = await startSimGateway({
        ca,
        adminToken,
        insecureNoAuth: adminToken === '',
        store,
        faults: hooks,
        issueDelayMs: options.issueDelayMs,
        clock: state.scheduler.clock,
        nodeId: positiveInt(env.get('NODE_ID')) ?? 1,
        myUrl: env.get('MY_URL') || published.rpcUrl || undefined,
        rpcNames: rpcNames(env),
      });
      if (!current(key, launch)) return void (await gateway.close());
      launch.gateway = gateway;
      launch.view = { vmId: vm.id, ...published, adminToken, store, faults: hooks.faults, logs: gateway.logs };
      events.emit('change', 'running', vm.id);
    } catch (err) {
      if (!current(key, launch)) return;
      launch.failure = `dstack-gateway did not start: ${err instanceof Error ? err.message : String(err)}`;
      events.emit('change', 'failed', vm.id);
    }
  };

  const shut = (launch: Launch): void => {
    void launch.gateway?.close();
    for (const forward of launch.forwards) void forward.then((bound) => bound?.close());
    if (launch.gateway !== undefined) events.emit('change', 'stopped', launch.vmId);
  };

  const sync = (): void => {
    if (closed) return;
    const wanted = new Set<string>();
    for (const vm of state.list()) {
      if (!vm.running || !isGatewayCvm(vm)) continue;
      const key = keyOf(vm);
      wanted.add(key);
      const launch = launches.get(key) ?? open(vm, key);
      launches.set(key, launch);
      if (vm.bootProgress === 'done' && !launch.starting) {
        launch.starting = true;
        void start(vm, key, launch);
      }
    }
    for (const [key, launch] of launches) {
      if (wanted.has(key)) continue;
      launches.delete(key);
      shut(launch);
    }
    for (const vmId of kept.keys()) if (state.find(vmId) === undefined) kept.delete(vmId);
  };

  const launchOf = (vmId: string): Launch | undefined => {
    const vm = state.find(vmId);
    return vm === undefined ? undefined : launches.get(keyOf(vm));
  };

  const registerAt: RegisterAt = async (url, request) => {
    const port = urlPort(url);
    if (port === undefined) throw new Error(`Failed to create gateway client for ${url}: invalid URL`);
    const vm = state.list().find((v) => v.running && isGatewayCvm(v) && v.launchedPorts.some((p) => p.protocol === 'tcp' && p.vm_port === GATEWAY_GUEST_PORTS.rpc && p.host_port === port));
    if (vm === undefined) throw unreachableError(url, 'tcp connect error: Connection refused (os error 111)');
    const gateway = launchOf(vm.id)?.gateway;
    if (gateway === undefined) throw unreachableError(url, 'Connection reset by peer (os error 104)');
    const allowed = request.gatewayAppId.toLowerCase();
    if (allowed !== 'any' && !allowed.includes(vm.appId.toLowerCase())) throw unreachableError(url, `Invalid dstack-gateway app id: ${vm.appId}`);
    await gateway.register({ appId: request.appId, instanceId: request.instanceId, ports: request.ports });
    return vm.id;
  };

  const unsubscribe = state.onChange(sync);
  sync();
  return {
    serves,
    registerAt,
    unregister: (gatewayVmId, instanceId) => {
      const store = kept.get(gatewayVmId)?.store;
      if (store !== undefined) removeInstance(store, instanceId);
    },
    running: (vmId) => launchOf(vmId)?.view,
    failure: (vmId) => launchOf(vmId)?.failure,
    faults: (vmId) => kept.get(vmId)?.hooks.faults,
    domains: () => [...launches.values()].flatMap((launch) => (launch.view ? [...launch.view.store.domains.keys()] : [])),
    onChange: (listener) => {
      events.on('change', listener);
      return () => events.off('change', listener);
    },
    close: async () => {
      closed = true;
      unsubscribe();
      events.removeAllListeners();
      const all = [...launches.values()];
      launches.clear();
      await Promise.all(all.map(async (launch) => Promise.all([launch.gateway?.close(), ...launch.forwards.map(async (f) => (await f)?.close())])));
    },
  };
}

// A running VM named dstack-gateway whose guest booted a KMS-mode compose.
function isGatewayCvm(vm: SimVm): boolean {
  if (vm.config.name !== SIM_GATEWAY_VM_NAME || vm.launchedCompose === '') return false;
  try {
    return parseAppCompose(vm.launchedCompose).keyProvider === 'kms';
  } catch {
    return false;
  }
}

// The loopback port the gateway serves a guest port on.
function innerPort(gateway: SimGateway, vmPort: number): number | undefined {
  if (vmPort === GATEWAY_GUEST_PORTS.proxy) return gateway.proxyPort;
  if (vmPort === GATEWAY_GUEST_PORTS.rpc) return Number(new URL(gateway.rpcUrl).port);
  if (vmPort === GATEWAY_GUEST_PORTS.admin) return Number(new URL(gateway.adminUrl).port);
  return undefined;
}

// The host-side URLs of the gateway's published ports; a wildcard bind is dialled on loopback.
function publishedUrls(ports: HostPort[]): { adminUrl: string; rpcUrl: string; proxyPort: number } {
  const at = (vmPort: number): string => {
    const p = ports.find((q) => q.protocol === 'tcp' && q.vm_port === vmPort);
    if (p === undefined) return '';
    const host = p.host_address === '0.0.0.0' ? '127.0.0.1' : p.host_address === '::' ? '::1' : p.host_address;
    return `${isIP(host) === 6 ? `[${host}]` : host}:${p.host_port}`;
  };
  const admin = at(GATEWAY_GUEST_PORTS.admin);
  const rpc = at(GATEWAY_GUEST_PORTS.rpc);
  const proxy = ports.find((q) => q.protocol === 'tcp' && q.vm_port === GATEWAY_GUEST_PORTS.proxy);
  return { adminUrl: admin === '' ? '' : `http://${admin}`, rpcUrl: rpc === '' ? '' : `https://${rpc}`, proxyPort: proxy?.host_port ?? 0 };
}

// The RPC certificate's names: loopback, the host as guests see it, and the env's RPC_DOMAIN
// and MY_URL host (upstream's SANs: rpc_domain and the my_url host).
function rpcNames(env: Map<string, string>): { dns: string[]; ips: string[] } {
  const names = ['localhost', '127.0.0.1', '10.0.2.2', env.get('RPC_DOMAIN') ?? ''];
  const myUrl = env.get('MY_URL') ?? '';
  if (URL.canParse(myUrl)) names.push(new URL(myUrl).hostname.replace(/^\[|\]$/g, ''));
  const unique = [...new Set(names.filter((n) => n !== ''))];
  return { dns: unique.filter((n) => isIP(n) === 0), ips: unique.filter((n) => isIP(n) !== 0) };
}

function urlPort(url: string): number | undefined {
  if (!URL.canParse(url)) return undefined;
  const parsed = new URL(url);
  return parsed.port === '' ? (parsed.protocol === 'http:' ? 80 : 443) : Number(parsed.port);
}

function positiveInt(value: string | undefined): number | undefined {
  const n = Number(value);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}
