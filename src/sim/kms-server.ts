// The simulated dstack-kms inside the `dstack-kms` CVM, as seen from the host through its
// published RPC port (docs/dstack.md §5.5, §5.6). While the VM runs, the port is bound (QEMU's
// hostfwd) but resets connections; once the guest reports boot `done` and a bootstrap delay has
// passed (the KMS generating its keys with auto_bootstrap_domain), the port speaks HTTPS and
// answers `/health`, `GetMeta` and `GetAppEnvEncryptPubKey` (what vmm-cli.py `--kms-url` asks
// before it encrypts env vars). Stopping the VM closes it.
//
// Where it differs from dstack-kms: one self-signed certificate per simulated host stands in for
// the KMS CA and its RPC leaf (no attestation extension); `k256_pubkey` is the simulator's KMS
// key (env-keys.ts), so env-encryption signatures made by the simulated VMM verify against it;
// GetMeta does not ask the webhook for `gateway_app_id`; only JSON mode is served, and no other
// KMS method (guests get their keys straight from the webhook, see vm-boot.ts). The env keys are
// the simulated VMM's (env-keys.ts), so both ways to an app's key agree.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import forge from 'node-forge';
import type { PublicKeyResponse } from '../vmm/messages.ts';
import { listenServer, readBody, type BoundServer } from './http-server.ts';
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
  // Boot `done` to HTTPS answering.
  bootstrapDelayMs: number;
  // GetMeta `k256_pubkey`: the simulator's KMS signing key.
  k256PublicKeyHex: string;
  // GetAppEnvEncryptPubKey: the signed env key of an app id (hex); throws the KMS's refusal.
  envPublicKey: (appIdHex: string) => PublicKeyResponse;
};

// The running KMS simulation: which forwards it owns, fault injection, close.
export type SimKms = {
  // True for the KMS RPC forward of a dstack-kms VM: this module binds it, not a plain listener.
  serves: (vm: SimVm, port: HostPort) => boolean;
  setFault: (fault: SimKmsFault) => void;
  close: () => Promise<void>;
};

type Launch = { vmId: string; generation: number; ready: boolean; bound: Promise<BoundServer | undefined> };

// Follow `state` and run one KMS endpoint per launch of a dstack-kms VM.
export function startSimKms(state: VmmState, options: SimKmsOptions): SimKms {
  const launches = new Map<string, Launch>();
  let fault: SimKmsFault = 'none';
  let closed = false;
  let identity: Identity | undefined;

  const serves = (vm: SimVm, port: HostPort): boolean => vm.config.name === SIM_KMS_VM_NAME && port.protocol === 'tcp' && port.vm_port === KMS_GUEST_PORT;

  const open = (vm: SimVm, port: HostPort): Launch => {
    identity ??= issueIdentity();
    const launch: Launch = { vmId: vm.id, generation: vm.generation, ready: false, bound: Promise.resolve(undefined) };
    const caCert = identity.certPem;
    const server = createServer({ key: identity.keyPem, cert: identity.certPem }, (req, res) => {
      answer(req, res, caCert, options).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(err instanceof Error ? err.message : String(err));
      });
    });
    // Before bootstrap nothing listens in the guest: slirp resets the connection.
    server.on('connection', (socket) => {
      if (!launch.ready) socket.destroy();
    });
    launch.bound = bind(server, vm, port, launch);
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
      const port = vm.running ? vm.launchedPorts.find((p) => serves(vm, p)) : undefined;
      if (port === undefined) continue;
      const key = `${vm.id} ${vm.generation}`;
      wanted.add(key);
      const launch = launches.get(key) ?? open(vm, port);
      launches.set(key, launch);
      if (vm.bootProgress === 'done' && !launch.ready) scheduleBootstrap(launch);
    }
    for (const [key, launch] of launches) {
      if (wanted.has(key)) continue;
      launches.delete(key);
      void launch.bound.then((bound) => bound?.close());
    }
  };

  const scheduling = new Set<Launch>();
  const scheduleBootstrap = (launch: Launch): void => {
    if (scheduling.has(launch) || fault === 'stall') return;
    scheduling.add(launch);
    state.scheduler.after(options.bootstrapDelayMs, () => {
      scheduling.delete(launch);
      const vm = state.find(launch.vmId);
      if (fault === 'none' && vm?.running === true && vm.generation === launch.generation) launch.ready = true;
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
      await Promise.all(all.map(async (launch) => (await launch.bound)?.close()));
    },
  };
}

// The two endpoints a host-side client uses to tell that the KMS runs (docs/dstack.md "Gateway"
// §7.2), and the env key vmm-cli.py fetches. The KMS accepts its methods bare or as `KMS.<name>`.
async function answer(req: IncomingMessage, res: ServerResponse, caCert: string, options: SimKmsOptions): Promise<void> {
  const url = new URL(req.url ?? '/', 'https://localhost');
  const body = await readBody(req);
  const json = (status: number, reply: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(`${JSON.stringify(reply)}\n`);
  };
  if (url.pathname === '/health') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('OK');
    return;
  }
  const method = url.pathname.startsWith('/prpc/') ? url.pathname.slice('/prpc/'.length).replace(/^KMS\./, '') : undefined;
  const jsonMode = req.method === 'GET' || url.searchParams.has('json') || (req.headers['content-type'] ?? '').includes('json');
  if ((method === 'GetMeta' || method === 'GetAppEnvEncryptPubKey') && !jsonMode) {
    json(400, { error: 'the simulated KMS answers JSON mode only (add ?json)' });
    return;
  }
  if (method === 'GetAppEnvEncryptPubKey') {
    try {
      const request: unknown = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
      const appId = (request as { app_id?: unknown } | null)?.app_id;
      json(200, options.envPublicKey(typeof appId === 'string' ? appId.replace(/^0x/, '') : ''));
    } catch (err) {
      json(400, { error: err instanceof Error ? err.message : String(err) });
    }
    return;
  }
  if (method === 'GetMeta') {
    json(200, {
      ca_cert: caCert,
      allow_any_upgrade: false,
      k256_pubkey: options.k256PublicKeyHex,
      bootstrap_info: null,
      is_dev: false,
      gateway_app_id: '',
      kms_contract_address: '0x0000000000000000000000000000000000000000',
      chain_id: 0,
    });
    return;
  }
  if (method !== undefined) {
    json(400, { error: `Method not found: ${url.pathname.slice('/prpc/'.length)}` });
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found');
}

type Identity = { keyPem: string; certPem: string };

// A self-signed certificate for the bootstrap domain 10.0.2.2 (and 127.0.0.1, where the host
// reaches the forward). The key comes from node:crypto: forge's own keygen takes seconds.
function issueIdentity(): Identity {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey);
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  cert.serialNumber = serial.toString('hex');
  cert.validity.notBefore = new Date(Date.now() - 3_600_000);
  cert.validity.notAfter = new Date(Date.now() + 3650 * 86_400_000);
  const subject = [{ name: 'commonName', value: 'Dstack KMS CA (simulated)' }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true },
    { name: 'subjectAltName', altNames: [{ type: 7, ip: '10.0.2.2' }, { type: 7, ip: '127.0.0.1' }] },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(privateKey), forge.md.sha256.create());
  return { keyPem: privateKey, certPem: forge.pki.certificateToPem(cert) };
}
