// The simulated dstack-kms inside the `dstack-kms` CVM, as seen from the host through its
// published RPC port (docs/dstack.md §5.5, §5.6), on each host address it is mapped to. While
// the VM runs, the port is bound (QEMU's hostfwd) but resets connections. Once the guest reports
// boot `done` and a bootstrap delay has passed, a KMS with keys (or one whose kms.toml sets
// auto_bootstrap_domain: it makes them now) speaks HTTPS and answers `/health`, `GetMeta`, `GetAppEnvEncryptPubKey` (what vmm-cli.py
// `--kms-url` asks before it encrypts env vars), `GetAppKey` (an app CVM's keys, mutual TLS, judged
// at `/bootAuth/app`), `GetTempCaCert` and `GetKmsKey` (the key handover to an onboarding KMS,
// mutual TLS, judged by this host's webhook at `/bootAuth/kms`). A
// KMS without keys whose kms.toml asks for onboarding serves the Onboard service in plain HTTP
// instead (kms-onboard.ts) until `Finish`. Stopping the VM closes it.
//
// Where it differs from dstack-kms: the root keys are the simulated host's (kms-root.ts, the
// same object the simulated VMM's GetAppEnvEncryptPubKey answers from), and a KMS CVM "has keys"
// from its first bootstrap or onboarding until the simulated host stops (its disk is not
// simulated); certificates are RSA with a simulated attestation (kms-certs.ts); `enforce_self_
// authorization` is taken as false (init renders it so); GetMeta does not ask the webhook for
// `gateway_app_id`; only JSON mode is served, and no other KMS method. The simulated guests do not
// call GetAppKey (they ask the webhook straight, see vm-boot.ts); it is here for what an app CVM
// gets, which a KMS replica must give alike.
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createTcpServer, type Server } from 'node:net';
import { postBootAuth, type SimPlatform } from './app-keys.ts';
import type { EnvKeys } from './env-keys.ts';
import { askKmsAllowed, attestVm } from './kms-attestation.ts';
import { answerOnboard, callerAttestation, issueKmsIdentity, kmsStartMode, type KmsIdentity } from './kms-onboard.ts';
import { listenServer, readBody, type BoundServer } from './http-server.ts';
import type { KmsRootKeys } from './kms-root.ts';
import type { SimVm } from './vm-record.ts';
import type { HostPort } from './vm-rules.ts';
import type { VmmState } from './vmm-state.ts';

// The CVM name and guest RPC port dstackup gives the KMS (docs/dstack.md §5.5).
export const SIM_KMS_VM_NAME = 'dstack-kms';
const KMS_GUEST_PORT = 8000;

// 'stall': the KMS never finishes bootstrapping (its HTTPS never comes up), like a guest stuck
// on PCCS access; 'none' behaves. Applies to launches that have not bootstrapped yet.
export type SimKmsFault = 'none' | 'stall';

// How the simulated KMS behaves.
export type SimKmsOptions = {
  // Boot `done` to HTTPS answering (or to the Onboard service answering).
  bootstrapDelayMs: number;
  // The host's KMS root keys and the env keys derived from them.
  keys: EnvKeys;
  // This host's auth webhook (http://host:port) and simulated platform.
  authUrl: string;
  platform: SimPlatform;
  // Unix time in ms, for the signed env-key replies.
  now: () => number;
};

// The running KMS simulation: which forwards it owns, fault injection, close.
export type SimKms = {
  // True for the KMS RPC forward of a dstack-kms VM: this module binds it, not a plain listener.
  serves: (vm: SimVm, port: HostPort) => boolean;
  setFault: (fault: SimKmsFault) => void;
  close: () => Promise<void>;
};

// What a launch's port does: nothing yet (slirp resets), the Onboard service, or the KMS RPC.
type Mode = 'down' | 'onboarding' | 'serving';

type Launch = { vmId: string; generation: number; mode: Mode; identity: KmsIdentity | undefined; rpc: HttpsServer; bound: Promise<(BoundServer | undefined)[]> };

// Follow `state` and run one KMS endpoint per launch of a dstack-kms VM.
export function startSimKms(state: VmmState, options: SimKmsOptions): SimKms {
  const launches = new Map<string, Launch>();
  // KMS CVMs that bootstrapped or onboarded: their keys are on their (simulated) disk.
  const withKeys = new Set<string>();
  let fault: SimKmsFault = 'none';
  let closed = false;

  const serves = (vm: SimVm, port: HostPort): boolean => vm.config.name === SIM_KMS_VM_NAME && port.protocol === 'tcp' && port.vm_port === KMS_GUEST_PORT;

  const attestation = (vmId: string) => {
    const vm = state.find(vmId);
    if (vm === undefined) throw new Error(`VM ${vmId} is gone`);
    return attestVm(vm, state.imageOf(vm.config.image)?.digest ?? '', options.platform);
  };

  // The RPC certificate and the temp CA come from the root keys, made when the KMS first serves.
  const serve = (launch: Launch): void => {
    const identity = (launch.identity ??= issueKmsIdentity(options.keys.exportRoot(), attestation(launch.vmId)));
    launch.rpc.setSecureContext({ key: identity.rpc.keyPem, cert: identity.rpc.certPem, ca: identity.tempCa.certPem });
    launch.mode = 'serving';
  };

  const open = (vm: SimVm, ports: HostPort[]): Launch => {
    // Client certificates are asked for, never required: only GetKmsKey needs one (upstream's
    // `[rpc.tls.mutual] mandatory = false`), and it must chain to the temp CA.
    const rpc = createHttpsServer({ requestCert: true, rejectUnauthorized: false }, (req, res) => reply(res, answer(req, res, launch, options)));
    const launch: Launch = { vmId: vm.id, generation: vm.generation, mode: 'down', identity: undefined, rpc, bound: Promise.resolve([]) };
    const onboarding = createHttpServer((req, res) => {
      const context = {
        attestation: () => attestation(vm.id),
        authUrl: options.authUrl,
        hasKeys: () => withKeys.has(vm.id),
        store: (keys: KmsRootKeys) => {
          options.keys.adoptRoot(keys);
          withKeys.add(vm.id);
          return options.keys.kmsPublicKeyHex;
        },
        // Upstream's main() then starts the KMS with the keys, or exits "Failed to onboard".
        finish: () => {
          if (withKeys.has(vm.id) && launch.mode === 'onboarding') serve(launch);
        },
      };
      reply(res, answerOnboard(req, res, context));
    });
    // One listener per mapping (QEMU sets up one hostfwd each), all reaching the same KMS.
    const front = (): Server =>
      createTcpServer((socket) => {
        const target = launch.mode === 'serving' ? rpc : launch.mode === 'onboarding' ? onboarding : undefined;
        if (target === undefined) socket.destroy();
        else target.emit('connection', socket);
      });
    launch.bound = Promise.all(ports.map((port) => bind(front(), vm, port, launch)));
    return launch;
  };
  const bind = (server: Server, vm: SimVm, port: HostPort, launch: Launch): Promise<BoundServer | undefined> =>
    listenServer(server, { host: port.host_address, port: port.host_port }).catch((err: unknown) => {
      if (!closed && state.find(vm.id)?.generation === launch.generation) {
        state.crashVm(vm.id, `qemu: could not set up host forwarding rule 'tcp:${port.host_address}:${port.host_port}': ${err instanceof Error ? err.message : String(err)}`);
      }
      return undefined;
    });

  const sync = (): void => {
    if (closed) return;
    const wanted = new Set<string>();
    for (const vm of state.list()) {
      const ports = vm.running ? vm.launchedPorts.filter((p) => serves(vm, p)) : [];
      if (ports.length === 0) continue;
      const key = `${vm.id} ${vm.generation}`;
      wanted.add(key);
      const launch = launches.get(key) ?? open(vm, ports);
      launches.set(key, launch);
      if (vm.bootProgress === 'done' && launch.mode === 'down') scheduleBootstrap(launch);
    }
    for (const [key, launch] of launches) {
      if (wanted.has(key)) continue;
      launches.delete(key);
      void launch.bound.then(closeAll);
    }
  };

  const scheduling = new Set<Launch>();
  const scheduleBootstrap = (launch: Launch): void => {
    if (scheduling.has(launch) || fault === 'stall') return;
    scheduling.add(launch);
    state.scheduler.after(options.bootstrapDelayMs, () => {
      scheduling.delete(launch);
      const vm = state.find(launch.vmId);
      if (fault !== 'none' || vm?.running !== true || vm.generation !== launch.generation) return;
      const mode = withKeys.has(vm.id) ? 'keys' : kmsStartMode(vm.launchedCompose);
      if (mode === 'disabled') return state.crashVm(vm.id, 'dstack-kms: Failed to onboard (no keys, and [core.onboard] is disabled)');
      if (mode === 'onboard') return void (launch.mode = 'onboarding');
      withKeys.add(vm.id);
      serve(launch);
    });
  };

  const unsubscribe = state.onChange(sync);
  sync();
  return {
    serves,
    setFault: (next) => {
      fault = next;
      sync();
    },
    close: async () => {
      closed = true;
      unsubscribe();
      const all = [...launches.values()];
      launches.clear();
      await Promise.all(all.map(async (launch) => closeAll(await launch.bound)));
    },
  };
}

async function closeAll(bound: (BoundServer | undefined)[]): Promise<void> {
  await Promise.all(bound.map((server) => server?.close()));
}

// Settle a handler's reply: an exception becomes a 500 with its message.
function reply(res: ServerResponse, handling: Promise<void>): void {
  handling.catch((err: unknown) => {
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
    res.end(err instanceof Error ? err.message : String(err));
  });
}

// The KMS RPC of a KMS with keys: the endpoints a host-side client uses to tell that it runs
// (docs/dstack.md §5.6), the env key vmm-cli.py fetches, and the two an onboarding KMS calls. The
// KMS accepts its methods bare or as `KMS.<name>`; errors are 400 `{"error"}` as ra-rpc sends them.
async function answer(req: IncomingMessage, res: ServerResponse, launch: Launch, options: SimKmsOptions): Promise<void> {
  const url = new URL(req.url ?? '/', 'https://localhost');
  const body = await readBody(req);
  const json = (status: number, value: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(`${JSON.stringify(value)}\n`);
  };
  if (url.pathname === '/health') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('OK');
  const method = url.pathname.startsWith('/prpc/') ? url.pathname.slice('/prpc/'.length).replace(/^KMS\./, '') : undefined;
  if (method === undefined) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found');
  const jsonMode = req.method === 'GET' || url.searchParams.has('json') || (req.headers['content-type'] ?? '').includes('json');
  if (!jsonMode) return json(400, { error: 'the simulated KMS answers JSON mode only (add ?json)' });
  const identity = launch.identity;
  if (identity === undefined) throw new Error('the KMS serves without an identity');
  try {
    json(200, await callKms(method, body, req, identity, options));
  } catch (err) {
    json(400, { error: err instanceof Error ? err.message : String(err) });
  }
}

async function callKms(method: string, body: Buffer, req: IncomingMessage, identity: KmsIdentity, options: SimKmsOptions): Promise<unknown> {
  switch (method) {
    case 'GetAppEnvEncryptPubKey': {
      const request: unknown = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
      const appId = (request as { app_id?: unknown } | null)?.app_id;
      return options.keys.publicKeyResponse(typeof appId === 'string' ? appId.replace(/^0x/, '') : '', options.now());
    }
    case 'GetMeta':
      return {
        ca_cert: identity.ca.certPem,
        allow_any_upgrade: false,
        k256_pubkey: options.keys.kmsPublicKeyHex,
        bootstrap_info: null,
        is_dev: false,
        gateway_app_id: '',
        kms_contract_address: '0x0000000000000000000000000000000000000000',
        chain_id: 0,
      };
    case 'GetAppKey': {
      // An app CVM's RA-TLS client certificate, signed with the temp CA key it was handed.
      const caller = callerAttestation(req);
      if (caller === undefined) throw new Error('App not allowed: No attestation provided');
      const verdict = await postBootAuth(options.authUrl, 'app', caller);
      if (!verdict.isAllowed) throw new Error(`App not allowed: Boot denied: ${verdict.reason}`);
      const keys = options.keys.appKeys(caller.appId, caller.instanceId);
      return {
        ca_cert: identity.ca.certPem,
        disk_crypt_key: keys.diskCryptKey.toString('hex'),
        env_crypt_key: keys.envCryptKey.toString('hex'),
        k256_key: keys.k256Key.toString('hex'),
        k256_signature: keys.k256Signature,
        tproxy_app_id: verdict.gatewayAppId ?? '',
        gateway_app_id: verdict.gatewayAppId ?? '',
        os_image_hash: caller.osImageHash,
      };
    }
    case 'GetTempCaCert':
      return { temp_ca_cert: identity.tempCa.certPem, temp_ca_key: identity.tempCa.keyPem, ca_cert: identity.ca.certPem };
    case 'GetKmsKey': {
      const caller = callerAttestation(req);
      if (caller === undefined) throw new Error('No attestation provided');
      const verdict = await askKmsAllowed(options.authUrl, caller);
      if (!verdict.isAllowed) throw new Error(`Boot denied: ${verdict.reason}`);
      const root = options.keys.exportRoot();
      return { temp_ca_key: root.tempCaKeyPem, keys: [{ ca_key: root.caKeyPem, k256_key: root.k256Hex }] };
    }
    default:
      throw new Error(`Method not found: ${method}`);
  }
}
