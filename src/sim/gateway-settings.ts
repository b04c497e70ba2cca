// The admin API's settings calls over the store: DNS credentials, ZT-domains and the certbot
// config, with upstream's checks, defaults and error texts (dstack/gateway/src/admin_service.rs).
import { randomBytes } from 'node:crypto';
import type {
  CertbotConfig,
  CreateDnsCredentialRequest,
  DnsCredentialInfo,
  SetCertbotConfigRequest,
  UpdateDnsCredentialRequest,
  ZtDomainConfig,
  ZtDomainInfo,
} from '../gateway/admin-messages.ts';
import { GatewayRejection, inKeyOrder, type DnsCredential, type GatewayStore } from './gateway-store.ts';

// Upstream stamps records with SystemTime::now(); so does the simulation (unix seconds).
const nowSecs = (): number => Math.floor(Date.now() / 1000);

// ListDnsCredentials: every credential, token redacted, and the default id (null when unset).
export function listDnsCredentials(store: GatewayStore): { credentials: DnsCredentialInfo[]; default_id: string | null } {
  return { credentials: inKeyOrder(store.credentials).map(credentialInfo), default_id: store.defaultCredentialId ?? null };
}

// CreateDnsCredential: always a new record with a new id, even for a name that exists (upstream
// has no uniqueness check, which is why a client must list first).
export function createDnsCredential(store: GatewayStore, req: CreateDnsCredentialRequest): DnsCredentialInfo {
  if (req.provider_type !== 'cloudflare') throw new GatewayRejection(`unsupported provider type: ${req.provider_type}`);
  const dnsTxtTtl = req.dns_txt_ttl ?? 60;
  const maxDnsWaitSecs = req.max_dns_wait ?? 300;
  if (dnsTxtTtl === 0) throw new GatewayRejection('dns_txt_ttl must be greater than zero');
  if (maxDnsWaitSecs === 0) throw new GatewayRejection('max_dns_wait must be greater than zero');
  const now = nowSecs();
  // generate_cred_id: the time in hex milliseconds, then 8 random hex digits.
  const id = `${Date.now().toString(16)}${randomBytes(4).toString('hex')}`;
  const credential: DnsCredential = { id, name: req.name, apiToken: req.cf_api_token, apiUrl: req.cf_api_url ?? undefined, dnsTxtTtl, maxDnsWaitSecs, createdAt: now, updatedAt: now };
  store.credentials.set(id, credential);
  if (req.set_as_default) store.defaultCredentialId = id;
  return credentialInfo(credential);
}

// UpdateDnsCredential: name, token and API URL change when given; cf_zone_id is ignored.
export function updateDnsCredential(store: GatewayStore, req: UpdateDnsCredentialRequest): DnsCredentialInfo {
  const credential = store.credentials.get(req.id);
  if (credential === undefined) throw new GatewayRejection('dns credential not found');
  if (req.name != null) credential.name = req.name;
  if (req.cf_api_token != null) credential.apiToken = req.cf_api_token;
  if (req.cf_api_url != null) credential.apiUrl = req.cf_api_url;
  credential.updatedAt = nowSecs();
  return credentialInfo(credential);
}

// GetCertbotConfig.
export function getCertbotConfig(store: GatewayStore): CertbotConfig {
  return { ...store.certbot };
}

// SetCertbotConfig: only the fields given change; nothing is validated, as upstream.
export function setCertbotConfig(store: GatewayStore, req: SetCertbotConfigRequest): void {
  const next = { ...store.certbot };
  if (req.renew_interval_secs != null) next.renew_interval_secs = req.renew_interval_secs;
  if (req.renew_before_expiration_secs != null) next.renew_before_expiration_secs = req.renew_before_expiration_secs;
  if (req.renew_timeout_secs != null) next.renew_timeout_secs = req.renew_timeout_secs;
  if (req.acme_url != null) next.acme_url = req.acme_url;
  store.certbot = next;
}

// Whether the proxy serves a domain's certificate now (`loaded_in_memory`).
export type LoadedCheck = (domain: string) => boolean;

// ListZtDomains.
export function listZtDomains(store: GatewayStore, loaded: LoadedCheck): { domains: ZtDomainInfo[] } {
  return { domains: inKeyOrder(store.domains).map((config) => domainInfo(store, config, loaded)) };
}

// AddZtDomain: the normalized domain must be new (the reply's config carries the stored name).
export function addZtDomain(store: GatewayStore, req: ZtDomainConfig, loaded: LoadedCheck): ZtDomainInfo {
  const config = toDomainConfig(store, req);
  if (store.domains.has(config.domain)) throw new GatewayRejection(`ZT-Domain config already exists: ${config.domain}`);
  store.domains.set(config.domain, config);
  return domainInfo(store, config, loaded);
}

// UpdateZtDomain: the normalized domain must exist; the whole config is replaced.
export function updateZtDomain(store: GatewayStore, req: ZtDomainConfig, loaded: LoadedCheck): ZtDomainInfo {
  const config = toDomainConfig(store, req);
  if (!store.domains.has(config.domain)) throw new GatewayRejection('ZT-Domain config not found');
  store.domains.set(config.domain, config);
  return domainInfo(store, config, loaded);
}

// DeleteZtDomain: the config goes; its certificate stays stored (and served), as upstream keeps
// cert data "for historical purposes".
export function deleteZtDomain(store: GatewayStore, domain: string): void {
  const name = normalizeZtDomain(domain);
  if (!store.domains.delete(name)) throw new GatewayRejection('ZT-Domain config not found');
}

// normalize_zt_domain: trimmed, no trailing root dot, no `*.`, lowercase, valid DNS labels.
function normalizeZtDomain(domain: string): string {
  const trimmed = domain.trim().replace(/\.+$/, '');
  const name = (trimmed.startsWith('*.') ? trimmed.slice(2) : trimmed).toLowerCase();
  if (name === '' || name.length > 253 || !/^[\x00-\x7f]*$/.test(name)) {
    throw new GatewayRejection('domain must be a non-empty ASCII DNS name of at most 253 bytes');
  }
  const validLabel = (label: string): boolean => label.length > 0 && label.length <= 63 && /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(label);
  if (!name.split('.').every(validLabel)) throw new GatewayRejection('domain contains an invalid DNS label');
  return name;
}

// proto_to_zt_domain_config, checks in upstream's order: credential, domain, port.
function toDomainConfig(store: GatewayStore, req: ZtDomainConfig): ZtDomainConfig {
  const credId = req.dns_cred_id == null || req.dns_cred_id === '' ? null : req.dns_cred_id;
  if (credId !== null && !store.credentials.has(credId)) throw new GatewayRejection('specified dns credential not found');
  const domain = normalizeZtDomain(req.domain);
  if (req.port === 0) throw new GatewayRejection('port must be between 1 and 65535');
  if (req.port > 65_535) throw new GatewayRejection('port out of range');
  return { domain, dns_cred_id: credId, port: req.port, node: req.node ?? null, priority: req.priority };
}

function domainInfo(store: GatewayStore, config: ZtDomainConfig, loaded: LoadedCheck): ZtDomainInfo {
  const cert = store.certs.get(config.domain);
  return {
    config: { ...config },
    cert_status: {
      has_cert: cert !== undefined,
      not_after: cert?.notAfter ?? 0,
      issued_by: cert?.issuedBy ?? 0,
      issued_at: cert?.issuedAt ?? 0,
      loaded_in_memory: loaded(config.domain),
    },
  };
}

// dns_cred_to_proto: every reply carries the token redacted, not only List.
function credentialInfo(credential: DnsCredential): DnsCredentialInfo {
  return {
    id: credential.id,
    name: credential.name,
    provider_type: 'cloudflare',
    cf_api_token: redactToken(credential.apiToken),
    cf_api_url: credential.apiUrl ?? '',
    dns_txt_ttl: credential.dnsTxtTtl,
    max_dns_wait: credential.maxDnsWaitSecs,
    created_at: credential.createdAt,
    updated_at: credential.updatedAt,
  };
}

// redact_token: up to 8 characters become stars; longer ones keep their first and last four.
function redactToken(token: string): string {
  return token.length <= 8 ? '*'.repeat(token.length) : `${token.slice(0, 4)}...${token.slice(-4)}`;
}
