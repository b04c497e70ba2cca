// What the simulated gateway keeps in its WaveKV store (dstack/gateway/src/kv/mod.rs): certbot
// settings, DNS credentials, ZT-domains, certificates and registered instances. The store lives
// on the gateway CVM's data disk upstream, so it outlives a gateway restart and goes with the
// CVM's removal: the host keeps one store per gateway VM and hands it to every launch.
import { randomBytes } from 'node:crypto';
import { SupervisorError } from '../errors.ts';
import type { CertbotConfig, ZtDomainConfig } from '../gateway/admin-messages.ts';
import type { HostPort } from './vm-rules.ts';

// The gateway refused a call; the message is what upstream puts in the 400 body.
export class GatewayRejection extends SupervisorError {
  constructor(message: string) {
    super('SIM_GATEWAY_REJECTED', message);
    this.name = 'GatewayRejection';
  }
}

// A DNS credential as stored (the token in clear; only the wire redacts it).
export type DnsCredential = {
  id: string;
  name: string;
  apiToken: string;
  apiUrl: string | undefined;
  dnsTxtTtl: number;
  maxDnsWaitSecs: number;
  createdAt: number;
  updatedAt: number;
};

// An issued wildcard certificate for `*.<domain>`; times in unix seconds.
export type CertData = { certPem: string; keyPem: string; notAfter: number; issuedAt: number; issuedBy: number };

// The node's ACME account (`global/acme_credentials`): the directory it was registered at and its
// URI. Upstream registers it with no contact address (certbot acme_client.rs `contact: &[]`).
export type AcmeAccount = { directory: string; uri: string };

// A registered CVM instance: where its guest ports are reachable from the host (the simulated
// stand-in for its WireGuard address) and when it registered.
export type GatewayInstance = { id: string; appId: string; ip: string; ports: HostPort[]; regTime: number };

// The whole store. Maps are keyed like upstream's KV keys, and listed in key order as a BTreeMap is.
export type GatewayStore = {
  // The node's uuid (Status.uuid), kept with its data.
  uuid: string;
  certbot: CertbotConfig;
  credentials: Map<string, DnsCredential>;
  defaultCredentialId: string | undefined;
  domains: Map<string, ZtDomainConfig>;
  certs: Map<string, CertData>;
  instances: Map<string, GatewayInstance>;
  // Undefined until the first issuance attempt that gets past the DNS client registers one.
  acmeAccount: AcmeAccount | undefined;
};

// An empty store with upstream's certbot defaults (GlobalCertbotConfig::default: 12 h, 30 d, 5 min).
export function createGatewayStore(): GatewayStore {
  return {
    uuid: randomBytes(16).toString('hex'),
    certbot: { renew_interval_secs: 12 * 3600, renew_before_expiration_secs: 30 * 86_400, renew_timeout_secs: 300, acme_url: '' },
    credentials: new Map(),
    defaultCredentialId: undefined,
    domains: new Map(),
    certs: new Map(),
    instances: new Map(),
    acmeAccount: undefined,
  };
}

// A map's values in key order.
export function inKeyOrder<V>(map: Map<string, V>): V[] {
  return [...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
}

// The "best" ZT-domain handed to CVMs (KvStore::get_best_zt_domain): domains bound to no node or
// to this one; highest priority wins, on a tie an unbound domain beats a bound one, and on a full
// tie the last in key order wins (Rust's `max_by` keeps the last maximum).
export function bestZtDomain(store: GatewayStore, nodeId: number): { domain: string; port: number } | undefined {
  const rank = (c: ZtDomainConfig): [number, number] => [c.priority, c.node == null ? 1 : 0];
  let best: ZtDomainConfig | undefined;
  for (const config of inKeyOrder(store.domains)) {
    if (config.node != null && config.node !== nodeId) continue;
    const [p, n] = rank(config);
    const [bp, bn] = best === undefined ? [-Infinity, -Infinity] : rank(best);
    if (p > bp || (p === bp && n >= bn)) best = config;
  }
  return best === undefined ? undefined : { domain: best.domain, port: best.port };
}

// The credential that issues `config`'s certificate (distributed_certbot.rs `dns_credential_for`).
export function credentialFor(store: GatewayStore, config: ZtDomainConfig): DnsCredential {
  if (config.dns_cred_id != null) {
    const named = store.credentials.get(config.dns_cred_id);
    if (named === undefined) throw new GatewayRejection('specified DNS credential not found');
    return named;
  }
  const fallback = store.defaultCredentialId === undefined ? undefined : store.credentials.get(store.defaultCredentialId);
  if (fallback === undefined) throw new GatewayRejection('no default DNS credential configured');
  return fallback;
}
