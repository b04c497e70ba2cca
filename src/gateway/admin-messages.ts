// The dstack-gateway admin API messages the supervisor and its simulated gateway use, in the JSON
// shape upstream's prpc speaks (dstack/gateway/rpc/proto/gateway_rpc.proto, `service Admin`): proto
// field names in snake_case, 64-bit integers as JSON numbers, an unset `optional` field as null or
// absent, an omitted request field as its proto default.
import * as z from 'zod';

const u32 = z.number().int().min(0).max(0xffff_ffff);
const u64 = z.number().int().min(0);
// A proto3 `optional` field: serde reads null and absence alike as None.
const opt = <T extends z.ZodType>(schema: T) => schema.nullish();

// google.protobuf.Empty; the admin server also takes an empty body or `null` for it.
export const EmptySchema = z.object({});

// HostInfo: one registered CVM instance in Status.hosts.
const HostInfoSchema = z.object({
  instance_id: z.string(),
  ip: z.string(),
  app_id: z.string(),
  base_domain: z.string(),
  latest_handshake: u64,
  num_connections: u64,
});
export type HostInfo = z.infer<typeof HostInfoSchema>;

// GatewayNodeInfo: a gateway node of the cluster (the simulation has one).
const GatewayNodeInfoSchema = z.object({
  id: u32,
  uuid: z.string(),
  url: z.string(),
  last_seen: u64,
  wg_public_key: z.string(),
  wg_ip: z.string(),
  wg_endpoint: z.string(),
});

// ProxyAccelStatus: what the data path does with kTLS and splice.
const ProxyAccelStatusSchema = z.object({
  ktls_mode: z.string(),
  splice_mode: z.string(),
  ktls_offloaded: u64,
  ktls_offload_failed: u64,
  splice_engaged: u64,
});

// StatusResponse (`uuid` is `bytes`: lowercase hex on the JSON wire).
export const StatusResponseSchema = z.object({
  id: u32,
  url: z.string(),
  bootnode_url: z.string(),
  num_connections: u64,
  hosts: z.array(HostInfoSchema),
  nodes: z.array(GatewayNodeInfoSchema),
  uuid: z.string(),
  accel: ProxyAccelStatusSchema,
});

// ZtDomainConfig: the request of Add/UpdateZtDomain and the `config` of ZtDomainInfo.
export const ZtDomainConfigSchema = z.object({
  domain: z.string().default(''),
  dns_cred_id: opt(z.string()),
  port: u32.default(0),
  node: opt(u32),
  priority: z.number().int().default(0),
});
export type ZtDomainConfig = z.infer<typeof ZtDomainConfigSchema>;

// ZtDomainCertStatus: `has_cert` is "certificate data stored", `loaded_in_memory` "served now".
export const ZtDomainCertStatusSchema = z.object({
  has_cert: z.boolean(),
  not_after: u64,
  issued_by: u32,
  issued_at: u64,
  loaded_in_memory: z.boolean(),
});

// ZtDomainInfo: a domain's configuration and certificate status.
export const ZtDomainInfoSchema = z.object({ config: ZtDomainConfigSchema, cert_status: ZtDomainCertStatusSchema });
export type ZtDomainInfo = z.infer<typeof ZtDomainInfoSchema>;

// ListZtDomainsResponse.
export const ListZtDomainsResponseSchema = z.object({ domains: z.array(ZtDomainInfoSchema) });

// DeleteZtDomainRequest.
export const DeleteZtDomainRequestSchema = z.object({ domain: z.string().default('') });

// RenewZtDomainCertRequest and its response.
export const RenewZtDomainCertRequestSchema = z.object({ domain: z.string().default(''), force: z.boolean().default(false) });
export const RenewZtDomainCertResponseSchema = z.object({ renewed: z.boolean(), not_after: u64 });

// DnsCredentialInfo: `cf_api_token` is always redacted by the gateway.
export const DnsCredentialInfoSchema = z.object({
  id: z.string(),
  name: z.string(),
  provider_type: z.string(),
  cf_api_token: z.string(),
  cf_api_url: z.string(),
  dns_txt_ttl: opt(u32),
  max_dns_wait: opt(u32),
  created_at: u64,
  updated_at: u64,
});
export type DnsCredentialInfo = z.infer<typeof DnsCredentialInfoSchema>;

// ListDnsCredentialsResponse.
export const ListDnsCredentialsResponseSchema = z.object({ credentials: z.array(DnsCredentialInfoSchema), default_id: opt(z.string()) });

// CreateDnsCredentialRequest (`cf_zone_id` is accepted and ignored, as upstream).
export const CreateDnsCredentialRequestSchema = z.object({
  name: z.string().default(''),
  provider_type: z.string().default(''),
  cf_api_token: z.string().default(''),
  cf_zone_id: z.string().default(''),
  set_as_default: z.boolean().default(false),
  cf_api_url: opt(z.string()),
  dns_txt_ttl: opt(u32),
  max_dns_wait: opt(u32),
});
export type CreateDnsCredentialRequest = z.infer<typeof CreateDnsCredentialRequestSchema>;

// UpdateDnsCredentialRequest: only the fields given change.
export const UpdateDnsCredentialRequestSchema = z.object({
  id: z.string().default(''),
  name: opt(z.string()),
  cf_api_token: opt(z.string()),
  cf_zone_id: opt(z.string()),
  cf_api_url: opt(z.string()),
});
export type UpdateDnsCredentialRequest = z.infer<typeof UpdateDnsCredentialRequestSchema>;

// CertbotConfigResponse (durations in seconds).
export const CertbotConfigResponseSchema = z.object({
  renew_interval_secs: u64,
  renew_before_expiration_secs: u64,
  renew_timeout_secs: u64,
  acme_url: z.string(),
});
export type CertbotConfig = z.infer<typeof CertbotConfigResponseSchema>;

// SetCertbotConfigRequest: only the fields given change.
export const SetCertbotConfigRequestSchema = z.object({
  renew_interval_secs: opt(u64),
  renew_before_expiration_secs: opt(u64),
  renew_timeout_secs: opt(u64),
  acme_url: opt(z.string()),
});
export type SetCertbotConfigRequest = z.infer<typeof SetCertbotConfigRequestSchema>;

// InfoResponse of the main RPC port's `Info`.
export const InfoResponseSchema = z.object({
  base_domain: z.string(),
  external_port: u32,
  app_address_ns_prefix: z.string(),
  version: z.string(),
});

// One admin RPC's request and reply schemas.
function rpc<Req extends z.ZodType, Res extends z.ZodType>(request: Req, response: Res) {
  return { request, response };
}

// The admin RPCs the supervisor calls and the simulation serves, under upstream's method names.
export const adminMethods = {
  Status: rpc(EmptySchema, StatusResponseSchema),
  ListZtDomains: rpc(EmptySchema, ListZtDomainsResponseSchema),
  AddZtDomain: rpc(ZtDomainConfigSchema, ZtDomainInfoSchema),
  UpdateZtDomain: rpc(ZtDomainConfigSchema, ZtDomainInfoSchema),
  DeleteZtDomain: rpc(DeleteZtDomainRequestSchema, EmptySchema),
  RenewZtDomainCert: rpc(RenewZtDomainCertRequestSchema, RenewZtDomainCertResponseSchema),
  ListDnsCredentials: rpc(EmptySchema, ListDnsCredentialsResponseSchema),
  CreateDnsCredential: rpc(CreateDnsCredentialRequestSchema, DnsCredentialInfoSchema),
  UpdateDnsCredential: rpc(UpdateDnsCredentialRequestSchema, DnsCredentialInfoSchema),
  GetCertbotConfig: rpc(EmptySchema, CertbotConfigResponseSchema),
  SetCertbotConfig: rpc(SetCertbotConfigRequestSchema, EmptySchema),
};

// An admin method name as it appears in `/prpc/<Method>`.
export type AdminMethod = keyof typeof adminMethods;

// Type guard for a method name taken from a URL.
export function isAdminMethod(name: string): name is AdminMethod {
  return Object.hasOwn(adminMethods, name);
}
