// A simulated dstack host for tests and `npm run dev`: dstack-vmm on `dir/vmm.sock`, the
// auth-simple webhook on loopback, and a real TCP listener per forwarded port. It is only ever
// started explicitly; no production path falls back to it.
//
// Where it differs from a real host (everything else follows docs/dstack.md §1, §2, §6.2):
// - No QEMU, no guest: boot is a timed walk through the real boot_progress stages. KMS-mode
//   guests ask the webhook directly (no KMS TLS, no quote); a non-empty kms_urls is required but
//   never contacted. Local-key-provider guests always get keys; `tpm` fails like upstream.
// - Denied or failed boots end `exited` and stay there: no `[cvm.auto_restart]` reboot loop.
// - StopVm stops at once (no 15 s TPM grace); ShutdownVm needs no guest agent, only a running VM.
// - RemoveVm stops the process at once; the record and its ports go after `removeDelayMs`.
//   A VMM restart finishes pending removals instead of reloading half-removed VMs.
// - Port forwards: tcp only (udp mappings are validated and kept but not bound). A listener
//   resets connections until boot_progress is "done", then answers 200 naming the app.
// - Port conflicts compare protocol + port with overlapping addresses (0.0.0.0/:: overlap all).
// - GPUs are the `gpus` given (none by default), not an lspci scan; `[cvm.gpu]` filters them as
//   upstream's does. A GPU is busy while a running VM holds it (upstream reads the bus-master bit),
//   or when it is not on vfio-pci. QEMU failing to open one ends the launch `exited` with a
//   `vmm.process.exited` event; "no such host device" is QEMU's wording, the other two texts are
//   the simulator's. "all" takes the NVSwitches among them (`kind: 'nvswitch'`) too, as upstream's
//   does, and QEMU opens them after the GPUs.
// - Images come from `images`, not a directory scan.
// - GetAppEnvEncryptPubKey answers from `envKeys` (per-app X25519 keys derived from the host's KMS
//   root keys and signed by its k256 key, see env-keys.ts) instead of proxying to `kms_url`.
// - vmm.toml (`vmmToml`): only the keys of SimVmmSettings are read. Where a real VMM reads it when
//   systemd starts it, the simulated one, listening before init renders it, reads it before each
//   call until it exists, and again at a simulated restart (vmm-toml.ts).
// - UpdateVm/UpgradeApp/ResizeVm check the image before changing anything; upstream writes the
//   manifest first and only `load_vm` refuses a missing image.
// - VmInfo.interfaces is empty (upstream lists the resolved NICs); `networking`, `networks` and
//   `simulated_tee` are stored but not checked against a node network or a TEE simulator config.
// - `/guest/Info` answers from the simulated attestation (kms-attestation.ts) in JSON only; the
//   rest of the guest API is not served.
// - `/logs` serves the `serial` channel only (the guest's reported events); `stdout` and `stderr`
//   are empty. `lines` tails, `follow` and `ansi` are ignored (nothing is followed or coloured).
// - Auth: tokens only (no htpasswd users). Extra events `vmm.process.exited` record crashes.
// - A VM named `dstack-kms` gets the simulated KMS (kms-server.ts) on its published port 8000
//   instead of a plain listener: HTTPS `/health`, `GetMeta`, `GetAppEnvEncryptPubKey`, `GetAppKey`,
//   `GetTempCaCert` and `GetKmsKey` once it has "bootstrapped", or the Onboard service while a
//   KMS whose kms.toml asks for onboarding waits for keys (a KMS replica, kms-onboard.ts).
// - A DNS server on UDP 127.0.0.1 (dns-server.ts, `dnsServer`) answers A queries for names under
//   the ZT domains of a running simulated gateway with 127.0.0.1, the simulated host's address,
//   as the operator's `*.<domain>` record would; tests override any name with `dns.answer`.
// - A KMS-mode VM named `dstack-gateway` gets the simulated gateway (gateway-cvm.ts) on its
//   published ports 8000 (RPC), 8001 (admin) and 443 (proxy) once it has booted, certificates
//   signed by the host CA in `tlsDir`; a gateway-enabled app guest registers with it at boot and
//   is reachable through its SNI proxy (gateway-guest.ts).
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureHostCa, tlsPaths, type Issued } from '../init/tls.ts';
import type { StatusRequestInput, VmInfo } from '../vmm/messages.ts';
import { StatusRequestSchema } from '../vmm/messages.ts';
import { createWebhookKeyRequester, DEFAULT_SIM_PLATFORM, type SimPlatform } from './app-keys.ts';
import { guestInfo } from './guest-info.ts';
import { startAuthWebhook } from './auth-webhook.ts';
import { startSimDns, type SimDns } from './dns-server.ts';
import { createEnvKeys, type EnvKeys } from './env-keys.ts';
import { createFaults, type Faults, type ServerControl } from './faults.ts';
import { startGatewayCvms, type GatewayCvms, type SimGatewayView } from './gateway-cvm.ts';
import type { GatewayFaults } from './gateway-faults.ts';
import { createGatewayGuests, noGatewayAnswers, type GatewayGuests } from './gateway-guest.ts';
import { startSimKms, type SimKmsFault } from './kms-server.ts';
import { startPortListeners } from './port-listeners.ts';
import { createVmmHandlers, vmLogLines } from './vmm-dispatch.ts';
import { queryStatus } from './vmm-queries.ts';
import { startVmmServer, type VmmServer } from './vmm-server.ts';
import type { VmmStateOptions } from './vmm-config.ts';
import { VmmState } from './vmm-state.ts';
import { followVmmToml, type VmmTomlSource } from './vmm-toml.ts';

// Everything configurable; only `dir` is required. The VMM knobs (delays, `[cvm.port_mapping]`
// — default enabled, 127.0.0.1, tcp 1–65535 —, images, `kms_url` — default empty, which fails
// GetAppEnvEncryptPubKey as dstackup renders it —, `[cvm].kms_urls`, clock) are the VM table's
// own options.
export type SimHostOptions = Omit<VmmStateOptions, 'requestAppKeys'> & {
  dir: string;
  // The vmm.toml the VMM reads (init's rendered `<config_dir>/vmm.toml`): its keys win over the
  // options above (see vmm-toml.ts for when it is read).
  vmmToml?: string;
  // `[auth] tokens = [token]`; also written to `dir/vmm-token` for clients.
  token?: string;
  // The auth-simple config file (default `dir/auth-config.json`); read on every request.
  authConfigPath?: string;
  platform?: Partial<SimPlatform>;
  // Boot `done` of the KMS CVM to its HTTPS answering (default 300 ms).
  kmsBootstrapDelayMs?: number;
  // The host CA's directory (ca.crt, ca.key), as init's step 4 writes it under `<config_dir>/tls`;
  // the simulated gateway signs its certificates with it. Default `dir/tls`, made on first use.
  tlsDir?: string;
  // How long the simulated gateway takes to issue a certificate (default 100 ms).
  gatewayIssueDelayMs?: number;
  // The app guests' gateway checker interval (upstream 180 s, the default); retries scale with it.
  gatewayCheckIntervalMs?: number;
};

// The simulated gateways, by the id of their `dstack-gateway` VM.
export type SimGateways = {
  // The VM's gateway while it runs (after boot `done` and its start), else undefined.
  running: (vmId: string) => SimGatewayView | undefined;
  // The VM's gateway faults, kept across its launches; undefined before its first launch.
  faults: (vmId: string) => GatewayFaults | undefined;
  // Resolve with the VM's gateway once it runs; reject if it fails to start or after `timeoutMs`.
  waitRunning: (vmId: string, timeoutMs?: number) => Promise<SimGatewayView>;
};

// Read-only access to the VMs for tests, in VmInfo form.
export type SimStateView = {
  list: (filter?: StatusRequestInput) => VmInfo[];
  get: (id: string) => VmInfo | undefined;
  // Resolve with the VM list (as `filter` selects it, like Status) once `predicate` holds; reject
  // after `timeoutMs`. A waiter for one VM filters: the list is rendered on every change, and beside
  // 5 000 VMs rendering all of them takes ~30 ms.
  waitFor: (predicate: (vms: VmInfo[]) => boolean, timeoutMs?: number, filter?: StatusRequestInput) => Promise<VmInfo[]>;
  // The compose the VM's guest booted with ('' while its process is down). Status shows only the
  // manifest, which UpdateVm rewrites before the restart that applies it; this is what runs.
  launchedCompose: (id: string) => string;
  // The encrypted_env the guest booted with ('' while its process is down), likewise.
  launchedEnv: (id: string) => string;
};

// A running simulated host.
export type SimHost = {
  vmmUrl: string;
  socketPath: string;
  tokenFile: string | undefined;
  authUrl: string;
  authConfigPath: string;
  faults: Faults;
  state: SimStateView;
  envKeys: EnvKeys;
  // The simulated KMS: make its bootstrap stall ('stall') or behave ('none').
  kms: { setFault: (fault: SimKmsFault) => void };
  gateways: SimGateways;
  // The simulated DNS server: `server` for [gateway] dns_servers, `answer` to change a record.
  dns: Pick<SimDns, 'server' | 'answer' | 'queries'>;
  stop: () => Promise<void>;
};

// Start the webhook, the VMM and the port listeners; stop() closes all of them and every timer.
export async function startSimHost(options: SimHostOptions): Promise<SimHost> {
  const { dir, token, vmmToml, authConfigPath = join(dir, 'auth-config.json'), platform, kmsBootstrapDelayMs = 300, ...rest } = options;
  const { tlsDir = join(dir, 'tls'), gatewayIssueDelayMs = 100, gatewayCheckIntervalMs = 180_000, ...vmmOptions } = rest;
  const webhook = await startAuthWebhook({ configPath: authConfigPath });
  const simPlatform = { ...DEFAULT_SIM_PLATFORM, ...platform };
  const requestAppKeys = createWebhookKeyRequester(webhook.url, simPlatform);
  const envKeys = createEnvKeys();
  // The guests need the state, and the state's boots need the guests: tie the knot.
  let guests: GatewayGuests | undefined;
  const state = new VmmState({
    ...vmmOptions,
    requestAppKeys,
    openEnv: (appId, hex) => envKeys.decrypt(appId, hex),
    setupGateway: (vm, input) => (guests ?? { setup: noGatewayAnswers }).setup(vm, input),
  });
  const config: VmmTomlSource = vmmToml === undefined ? { load: async () => {}, beforeCall: async () => {} } : followVmmToml(vmmToml, (s) => state.configure(s));
  // The fault gate needs the server's down/up, and the server needs the gate: tie the knot. The
  // VMM coming back up reads its vmm.toml again.
  let control: ServerControl | undefined;
  const lateControl: ServerControl = {
    down: () => control?.down() ?? Promise.resolve(),
    up: async () => {
      await control?.up();
      await config.load();
    },
  };
  const { faults, gate } = createFaults(state, state.scheduler, lateControl);
  const socketPath = join(dir, 'vmm.sock');
  const tokenFile = token === undefined ? undefined : join(dir, 'vmm-token');
  let server: VmmServer;
  try {
    if (tokenFile !== undefined) await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
    await config.load();
    server = await startVmmServer({
      socketPath,
      handlers: createVmmHandlers(state, envKeys),
      gate: async (method, apply, target) => {
        await config.beforeCall();
        return gate(method, apply, target);
      },
      logsOf: (id) => vmLogLines(state, id),
      guestInfoOf: (id) => guestInfo(state, id, simPlatform),
      tokens: token === undefined ? [] : [token],
    });
  } catch (err) {
    state.dispose();
    await webhook.close();
    throw err;
  }
  control = server.control;
  const kms = startSimKms(state, {
    bootstrapDelayMs: kmsBootstrapDelayMs,
    keys: envKeys,
    authUrl: webhook.url,
    platform: simPlatform,
    now: () => state.scheduler.clock.now(),
  });
  const gatewayCvms = startGatewayCvms(state, {
    loadCa: () => loadHostCa(tlsDir),
    openEnv: (vm) => (vm.launchedEnv === '' ? [] : envKeys.decrypt(vm.appId, vm.launchedEnv)),
    issueDelayMs: gatewayIssueDelayMs,
  });
  const dns = await startSimDns({ zones: () => gatewayCvms.domains() });
  const gatewayGuests = createGatewayGuests({ state, registerAt: gatewayCvms.registerAt, unregister: gatewayCvms.unregister, intervalMs: gatewayCheckIntervalMs });
  guests = gatewayGuests;
  gatewayCvms.onChange((change) => {
    if (change === 'running') gatewayGuests.refreshAll();
  });
  const listeners = startPortListeners(state, (vm, port) => kms.serves(vm, port) || gatewayCvms.serves(vm, port));
  return {
    vmmUrl: server.url,
    socketPath,
    tokenFile,
    authUrl: webhook.url,
    authConfigPath,
    faults,
    state: createStateView(state),
    envKeys,
    kms: { setFault: kms.setFault },
    gateways: createGatewaysView(gatewayCvms),
    dns: { server: dns.server, answer: dns.answer, queries: dns.queries },
    stop: async () => {
      gatewayGuests.close();
      state.dispose();
      await Promise.all([listeners.close(), kms.close(), gatewayCvms.close(), server.close(), webhook.close(), dns.close()]);
    },
  };
}

function createStateView(state: VmmState): SimStateView {
  const list = (filter: StatusRequestInput = {}): VmInfo[] => queryStatus(state, StatusRequestSchema.parse(filter)).vms;
  return {
    list,
    get: (id) => list({ ids: [id] })[0],
    launchedCompose: (id) => state.find(id)?.launchedCompose ?? '',
    launchedEnv: (id) => state.find(id)?.launchedEnv ?? '',
    waitFor: (predicate, timeoutMs = 5000, filter = {}) =>
      waitOnChanges(
        (listener) => state.onChange(listener),
        () => {
          const vms = list(filter);
          return predicate(vms) ? vms : undefined;
        },
        timeoutMs,
        () => `simulated host: condition not met within ${timeoutMs} ms; VMs: ${JSON.stringify(list({ brief: true }))}`,
      ),
  };
}

function createGatewaysView(cvms: GatewayCvms): SimGateways {
  return {
    running: cvms.running,
    faults: cvms.faults,
    waitRunning: (vmId, timeoutMs = 5000) =>
      waitOnChanges(
        cvms.onChange,
        () => {
          const failure = cvms.failure(vmId);
          if (failure !== undefined) throw new Error(`simulated host: VM ${vmId}: ${failure}`);
          return cvms.running(vmId);
        },
        timeoutMs,
        () => `simulated host: the gateway of VM ${vmId} did not start within ${timeoutMs} ms`,
      ),
  };
}

// Resolve with what `check` returns once it returns something, checking now and on every change;
// reject with what `check` throws, or after `timeoutMs` with `late()`.
function waitOnChanges<T>(subscribe: (listener: () => void) => () => void, check: () => T | undefined, timeoutMs: number, late: () => string): Promise<T> {
  return new Promise((resolve, reject) => {
    const settle = (): void => {
      let value: T | undefined;
      try {
        value = check();
      } catch (err) {
        finish();
        reject(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      if (value === undefined) return;
      finish();
      resolve(value);
    };
    const timer = setTimeout(() => {
      finish();
      reject(new Error(late()));
    }, timeoutMs);
    const unsubscribe = subscribe(settle);
    const finish = (): void => {
      clearTimeout(timer);
      unsubscribe();
    };
    settle();
  });
}

// The host CA init writes at step 4; made here with init's own code when it is missing, so a host
// without init (tests) still has one to sign its gateway's certificates.
async function loadHostCa(tlsDir: string): Promise<Issued> {
  const paths = tlsPaths(tlsDir);
  const read = async (): Promise<Issued> => ({ certPem: await readFile(paths.caCert, 'utf8'), keyPem: await readFile(paths.caKey, 'utf8') });
  try {
    return await read();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await ensureHostCa(tlsDir);
  return read();
}
