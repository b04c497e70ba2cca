// A simulated dstack-gateway (Tier 2) for the simulated host: the admin API subset the supervisor
// uses, an instance registry the host feeds when a gateway-enabled app boots, certificate
// issuance from a given CA in place of ACME, and the SNI-routing HTTPS proxy. Upstream is
// Dstack-TEE/dstack at 312dc605; paths below are under dstack/gateway/.
//
// Reproduced:
// - Admin prpc at `/prpc/<Method>`, `/prpc/Admin.<Method>` and `/<Method>`; JSON mode with proto
//   field names; `()` replies as `null`; errors as 400 `{"error": ...}` with upstream's texts;
//   401 + `WWW-Authenticate: Basic realm="dstack-gateway admin"` without a credential (Bearer,
//   X-Admin-Token, Basic, `?token=` on GET); refusing to start with no token
//   (src/main.rs, src/admin_auth.rs, src/admin_service.rs; gateway-admin.ts).
// - Status, List/Add/Update/DeleteZtDomain (domain normalization, duplicate and not-found
//   errors, port 1–65535, `has_cert` / `loaded_in_memory`), RenewZtDomainCert,
//   List/Create/UpdateDnsCredential (cloudflare only, ttl 60 / wait 300 defaults, token
//   redacted in every reply, no name uniqueness), Get/SetCertbotConfig (partial update, 12 h /
//   30 d / 300 s defaults) (rpc/proto/gateway_rpc.proto, src/admin_service.rs, src/kv/mod.rs;
//   gateway-settings.ts).
// - The best ZT-domain (priority, then unbound) in Status.hosts, Info and registration replies
//   (src/kv/mod.rs `get_best_zt_domain`; gateway-store.ts).
// - Registration checks and sticky addresses per instance id (src/main_service.rs;
//   gateway-registry.ts).
// - Issuance: once in the background when a domain is added, for every domain at start, then
//   every renew_interval_secs; needs the domain's or the default DNS credential; skips a cert
//   outside the renewal window; one attempt per domain at a time; a deleted domain keeps its
//   certificate, and the proxy keeps serving it (src/distributed_certbot.rs,
//   src/main_service.rs; gateway-certbot.ts).
// - The node's one ACME account, registered with no contact at the first attempt past the DNS
//   client and registered anew when acme_url names another directory, as the pinned
//   gateway-v0.5.8 does (HEAD refuses that and wants RotateAcmeCredentials; gateway-certbot.ts).
// - The proxy: SNI read before the handshake (4 KiB), `<id>[-[<port>][s|g]]` with its errors,
//   instance id or app id, unknown ids and names without a wildcard closed before the
//   handshake, terminate + relay, `s` passthrough, `gateway.<base>/health`
//   (src/proxy.rs, src/proxy/sni.rs, src/proxy/tls_terminate.rs; gateway-proxy.ts, gateway-sni.ts).
// - `GET /health` → `OK` and `Info` on the RPC port (src/web_routes.rs; gateway-rpc.ts).
//
// Left out: ACME and Cloudflare themselves (a fault picks the failure instead: rate limit,
// token without DNS edit rights, no zone), RotateAcmeCredentials, CAA; static-cert mode; RegisterCvm over mutual RA-TLS, WireGuard
// (latest_handshake is the registration time, no recycling of stale instances), WaveKV sync
// and other nodes; port policies, PROXY protocol, kTLS/splice, connection limits and timeouts;
// TXT-record passthrough for custom domains; the legacy `health.<base>` id; app-info and
// acme-info on `gateway.<base>`; protobuf mode and request fields in a GET query; the other
// admin methods (they answer "Method not found"). Startup does not wait for issuance.
import { SupervisorError } from '../errors.ts';
import { systemClock, type Clock } from '../clock.ts';
import type { HostNames, Issued } from '../init/tls.ts';
import { startAdminServer, type AdminHandlers } from './gateway-admin.ts';
import { createCertbot, type Certbot } from './gateway-certbot.ts';
import { createGatewayFaults, type GatewayFaultHooks, type GatewayFaults } from './gateway-faults.ts';
import { startGatewayProxy, type GatewayProxy } from './gateway-proxy.ts';
import { hostInfos, registerInstance, removeInstance, type GatewayRegisterRequest, type GatewayRegistration } from './gateway-registry.ts';
import { startRpcServer } from './gateway-rpc.ts';
import * as settings from './gateway-settings.ts';
import { bestZtDomain, createGatewayStore, GatewayRejection, type GatewayStore } from './gateway-store.ts';
import type { BoundServer } from './http-server.ts';
import { Scheduler } from './scheduler.ts';

// A TCP address to bind (port 0: any free port).
export type GatewayListen = { host: string; port: number };

// Everything configurable; `ca` and `adminToken` are required.
export type SimGatewayOptions = {
  // Signs the `*.<domain>` certificates and the RPC port's certificate (the host CA in dev).
  ca: Issued;
  // `[core.admin] auth_token`; empty refuses to start, as upstream, unless `insecureNoAuth`.
  adminToken: string;
  // `[core.admin] insecure_no_auth`: an admin API with no credential at all, which is also what
  // gateway images from before admin authentication (#796, ≤ 0.5.11) serve.
  insecureNoAuth?: boolean;
  // The gateway CVM's data (default: empty). Pass the same store to a restarted gateway.
  store?: GatewayStore;
  // Injected faults (default: none). Pass the same hooks to a restarted gateway.
  faults?: GatewayFaultHooks;
  // Timers: the issuance delay and the renewal loop.
  clock?: Clock;
  // How long an issuance takes (default 100 ms).
  issueDelayMs?: number;
  // `[core.sync] node_id` (default 1) and `my_url` (default the RPC port's URL).
  nodeId?: number;
  myUrl?: string;
  // Where the three ports listen (default 127.0.0.1, any free port).
  admin?: GatewayListen;
  rpc?: GatewayListen;
  proxy?: GatewayListen;
  // The RPC certificate's names (default localhost and 127.0.0.1).
  rpcNames?: HostNames;
};

// A running simulated gateway.
export type SimGateway = {
  adminUrl: string;
  rpcUrl: string;
  proxyPort: number;
  store: GatewayStore;
  faults: GatewayFaults;
  // A booting guest's RegisterCvm; rejects with a GatewayRejection like upstream's error.
  register: (request: GatewayRegisterRequest) => Promise<GatewayRegistration>;
  // Forget an instance (what upstream's recycler does to stale ones); false if unknown.
  unregister: (instanceId: string) => boolean;
  // The gateway's log: issuance outcomes and refused proxy connections, oldest first.
  logs: () => string[];
  // Close every port and timer; the store stays as it is.
  close: () => Promise<void>;
};

const LOOPBACK: GatewayListen = { host: '127.0.0.1', port: 0 };
const LOOPBACK_NAMES: HostNames = { dns: ['localhost'], ips: ['127.0.0.1'] };
const MAX_LOG_LINES = 1000;

// Start the gateway: proxy, RPC and admin ports bound, certificates loaded, certbot running.
export async function startSimGateway(options: SimGatewayOptions): Promise<SimGateway> {
  const { ca, adminToken, store = createGatewayStore(), faults = createGatewayFaults(), issueDelayMs = 100, nodeId = 1 } = options;
  if (adminToken.trim() === '' && options.insecureNoAuth !== true) {
    throw new SupervisorError('SIM_GATEWAY_CONFIG', 'admin API is enabled but neither auth_token nor htpasswd_file is configured; set core.admin.auth_token, DSTACK_GATEWAY_ADMIN_TOKEN, ADMIN_API_TOKEN, core.admin.htpasswd_file, or insecure_no_auth = true (testing only)');
  }
  const scheduler = new Scheduler(options.clock ?? systemClock);
  const lines: string[] = [];
  const log = (line: string): void => {
    lines.push(line);
    if (lines.length > MAX_LOG_LINES) lines.shift();
  };
  const bound: { close: () => Promise<void> }[] = [];
  const closeAll = async (): Promise<void> => {
    scheduler.dispose();
    await Promise.all(bound.map((b) => b.close()));
  };
  let closed = false;
  try {
    const proxy = await startGatewayProxy({ ...(options.proxy ?? LOOPBACK), store, log });
    bound.push(proxy);
    const best = (): { domain: string; port: number } => bestZtDomain(store, nodeId) ?? { domain: '', port: 0 };
    const rpc: BoundServer = await startRpcServer({
      ...(options.rpc ?? LOOPBACK),
      ca,
      names: options.rpcNames ?? LOOPBACK_NAMES,
      info: () => ({ base_domain: best().domain, external_port: best().port }),
    });
    bound.push(rpc);
    const rpcUrl = `https://${options.rpc?.host ?? LOOPBACK.host}:${rpc.port}`;
    const myUrl = options.myUrl ?? rpcUrl;
    const certbot = createCertbot({ store, ca, nodeId, scheduler, issueDelayMs, issuanceFault: faults.issuanceFault, loaded: proxy.loadCert, log });
    const handlers = adminHandlers({ store, certbot, proxy, nodeId, myUrl, best });
    // An empty token list lets every request through (vmm-auth.ts).
    const token = options.insecureNoAuth === true ? '' : adminToken;
    const admin = await startAdminServer({ ...(options.admin ?? LOOPBACK), token, handlers, gate: faults.gate });
    bound.push(admin);
    certbot.start();
    return {
      adminUrl: `http://${options.admin?.host ?? LOOPBACK.host}:${admin.port}`,
      rpcUrl,
      proxyPort: proxy.port,
      store,
      faults: faults.faults,
      register: (request) =>
        faults.gate('RegisterCvm', () => {
          if (closed) throw new GatewayRejection(`error sending request for url (${rpcUrl}/prpc/RegisterCvm): connection refused`);
          const instance = registerInstance(store, request, Math.floor(Date.now() / 1000));
          const { domain, port } = best();
          return { clientIp: instance.ip, domain, externalPort: port };
        }),
      unregister: (instanceId) => removeInstance(store, instanceId),
      logs: () => [...lines],
      close: async () => {
        closed = true;
        await closeAll();
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

type HandlerDeps = {
  store: GatewayStore;
  certbot: Certbot;
  proxy: GatewayProxy;
  nodeId: number;
  myUrl: string;
  best: () => { domain: string; port: number };
};

// The admin methods over the store, the certbot and the proxy.
function adminHandlers({ store, certbot, proxy, nodeId, myUrl, best }: HandlerDeps): AdminHandlers {
  const loaded = proxy.hasCert;
  return {
    Status: () => ({
      id: nodeId,
      url: myUrl,
      bootnode_url: '',
      num_connections: proxy.totalConnections(),
      hosts: hostInfos(store, best().domain, proxy.connections),
      // No WireGuard: the node's tunnel fields are empty.
      nodes: [{ id: nodeId, uuid: store.uuid, url: myUrl, last_seen: Math.floor(Date.now() / 1000), wg_public_key: '', wg_ip: '', wg_endpoint: '' }],
      uuid: store.uuid,
      accel: { ktls_mode: 'off', splice_mode: 'off', ktls_offloaded: 0, ktls_offload_failed: 0, splice_engaged: 0 },
    }),
    ListZtDomains: () => settings.listZtDomains(store, loaded),
    AddZtDomain: (req) => {
      const info = settings.addZtDomain(store, req, loaded);
      certbot.domainAdded(info.config.domain);
      return info;
    },
    UpdateZtDomain: (req) => settings.updateZtDomain(store, req, loaded),
    DeleteZtDomain: ({ domain }) => (settings.deleteZtDomain(store, domain), {}),
    RenewZtDomainCert: ({ domain, force }) => certbot.renew(domain, force),
    ListDnsCredentials: () => settings.listDnsCredentials(store),
    CreateDnsCredential: (req) => settings.createDnsCredential(store, req),
    UpdateDnsCredential: (req) => settings.updateDnsCredential(store, req),
    GetCertbotConfig: () => settings.getCertbotConfig(store),
    SetCertbotConfig: (req) => (settings.setCertbotConfig(store, req), {}),
  };
}
