// gateway.d/gateway.toml (issue 14): the keys, their defaults, and the rules between them. Strict
// like supervisor.toml: an unknown key is an error, so a misspelt key is never silently ignored.
// No message quotes a string from the file: an operator who pastes the token into the wrong key
// must not find it in the journal.
import { join } from 'node:path';
import * as z from 'zod';
import { IMAGE_NAME } from '../app/overrides.ts';
import { cvmSize } from '../toml-config.ts';
import { wildcardDnsZone } from './base-domain.ts';

// The tables of gateway.toml, named `[certificate] email` in messages.
export const GATEWAY_SECTIONS: ReadonlySet<string> = new Set(['certificate', 'cvm']);

// The token file's name beside gateway.toml when `[certificate] token_file` is not set.
const DEFAULT_TOKEN_FILE_NAME = 'cloudflare.token';

// The longest first label of an app's name is `<40 hex app id>-<5-digit port><s|g>` (47
// characters, then a dot; SNI grammar in docs/dstack.md, Gateway), and a whole name may have
// 253: 205 are left for the domain.
const MAX_DOMAIN_LENGTH = 253 - 48;
const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
// Two or more labels; the last starts with a letter, so an IP address is not a domain.
const DOMAIN = new RegExp(`^(?:${LABEL}\\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$`);

const PORT = 'must be a port number from 1 to 65535';
const port = z.number({ error: PORT }).int({ error: PORT }).min(1, { error: PORT }).max(65535, { error: PORT });
const table = (name: string) => ({
  error: (issue: { code: string }) => (issue.code === 'invalid_type' ? `must be a table: write [${name}] on a line of its own, followed by its keys` : undefined),
});

const CertificateSchema = (dir: string) =>
  z
    .object(
      {
        // Unset: "acme" with a domain, "self-signed" without one (see resolveMode).
        mode: z.enum(['acme', 'self-signed'], { error: 'must be "acme" (a Let\'s Encrypt certificate through DNS-01) or "self-signed" (the host CA signs the wildcard)' }).optional(),
        email: z.email({ error: 'must be an email address such as "ops@example.com", Let\'s Encrypt\'s contact for the certificate' }).optional(),
        // Let's Encrypt's staging CA: untrusted certificates, far higher rate limits.
        staging: z.boolean({ error: 'must be true (Let\'s Encrypt\'s staging CA, for testing) or false' }).default(false),
        // The gateway's certbot speaks DNS-01 through the Cloudflare API only (docs/dstack.md, Gateway).
        dns_provider: z.literal('cloudflare', { error: 'must be "cloudflare", the only DNS provider the dstack gateway supports' }).default('cloudflare'),
        // Absolute, so that a token pasted here by mistake is refused without being turned into a
        // path that an error would print.
        token_file: z
          .string({ error: 'must be an absolute path such as "/etc/dstack/gateway.d/cloudflare.token"' })
          .startsWith('/', { error: 'must be an absolute path such as "/etc/dstack/gateway.d/cloudflare.token"' })
          .default(join(dir, DEFAULT_TOKEN_FILE_NAME)),
      },
      table('certificate'),
    )
    .strict();

// Sized for fewer than 100 apps: upstream's guide gives 4 vCPUs and 4 GB for < 100 CVMs (its
// deploy script's 32/32G is for a cluster node) and its end-to-end suite runs 4/4 GB. The disk
// holds the gateway's container image and its store (certificates, registrations): the 20 GB of
// an app's default leaves room for both.
const CvmSchema = z
  .object(
    {
      // Empty: the guest image that init installed, as for apps.
      image: z
        .string({ error: 'must be a guest image directory name' })
        .refine((name) => name === '' || (IMAGE_NAME.test(name) && !name.includes('..')), {
          error: 'must be a guest image directory name (1-64 of A-Z a-z 0-9 _ . -), or "" for the image init installed',
        })
        .default(''),
      vcpu: cvmSize('vcpu').default(4),
      // MB
      memory: cvmSize('memory').default(4096),
      // GB
      disk: cvmSize('disk').default(20),
    },
    table('cvm'),
  )
  .strict();

// What the file says before the rules between keys: `mode` may still be unset.
const fileSchema = (dir: string) =>
  z
    .object({
      // Unset: no-domain mode, apps named under <a-b-c-d>.sslip.io.
      domain: z
        .string({ error: 'must be a domain name such as "apps.example.com"' })
        .max(MAX_DOMAIN_LENGTH, { error: `must be at most ${MAX_DOMAIN_LENGTH} characters, so that <app id>-<port>.<domain> stays a valid DNS name` })
        .regex(DOMAIN, { error: 'must be a lower-case DNS name of two or more labels such as "apps.example.com" (no "*.", no trailing dot, not an IP address); leave it out for no-domain mode' })
        .optional(),
      apps: z.enum(['opt-in', 'all'], { error: 'must be "opt-in" (apps with x-dstack: {gateway: true}) or "all" (every app unless x-dstack: {gateway: false})' }).default('opt-in'),
      // Unset: the host address the caller knows (loadGatewayConfig's hostAddress).
      public_ip: z.ipv4({ error: 'must be an IPv4 address such as "203.0.113.7", or left out for the host address' }).optional(),
      // Host port of the HTTPS proxy.
      proxy_port: port.default(443),
      // Host port of the gateway RPC (TCP) and of WireGuard (UDP), as upstream's deploy script maps them.
      rpc_port: port.default(9202),
      certificate: CertificateSchema(dir).prefault({}),
      cvm: CvmSchema.prefault({}),
    })
    .strict();

type GatewayFile = z.infer<ReturnType<typeof fileSchema>>;

function certificateMode(file: GatewayFile): 'acme' | 'self-signed' {
  return file.certificate.mode ?? (file.domain === undefined ? 'self-signed' : 'acme');
}

// The rules between keys, each reported at the key to change.
function checkRules(file: GatewayFile, ctx: z.core.$RefinementCtx<GatewayFile>): void {
  const issue = (path: string[], message: string) => ctx.addIssue({ code: 'custom', path, message });
  if (certificateMode(file) === 'acme') {
    if (file.domain === undefined) {
      issue(
        ['certificate', 'mode'],
        '"acme" needs a domain: without one apps are named under <a-b-c-d>.sslip.io, and a certificate for that needs a DNS-01 record in sslip.io\'s zone, which only sslip.io can write; ' +
          'set domain = "apps.example.com" (a zone you control on Cloudflare), or set mode = "self-signed"',
      );
    } else {
      const zone = wildcardDnsZone(file.domain);
      if (zone !== undefined) {
        issue(['domain'], `is under ${zone}, whose DNS zone only ${zone} can write, so an ACME certificate (DNS-01) cannot be had for it; use a domain whose zone you control on Cloudflare, or set [certificate] mode = "self-signed"`);
      }
    }
    if (file.certificate.email === undefined) {
      issue(['certificate', 'email'], 'is needed for an ACME certificate (Let\'s Encrypt\'s contact address); add email = "ops@example.com" under [certificate], or set mode = "self-signed"');
    }
  }
  if (file.proxy_port === file.rpc_port) {
    issue(['rpc_port'], `must differ from proxy_port (both are ${file.proxy_port}): the HTTPS proxy and the gateway RPC each need a host port of their own; change one of them`);
  } else if (file.rpc_port === 65535) {
    issue(['rpc_port'], 'must be at most 65534: the host port after it is the gateway\'s admin API (on loopback); choose a lower port');
  } else if (file.proxy_port === gatewayAdminPort(file)) {
    issue(['proxy_port'], `must not be rpc_port + 1 (${file.proxy_port}): that host port is the gateway's admin API (on loopback); change one of them`);
  }
}

// The host port of the gateway's admin API: the one after rpc_port, as upstream's deploy script
// lays them out (RPC 9202, admin 9203; gateway/dstack-app/deploy-to-vmm.sh), so it needs no key
// of its own and stays the same across restarts.
export function gatewayAdminPort(config: { rpc_port: number }): number {
  return config.rpc_port + 1;
}

// The schema of a gateway.toml in directory `dir` (where the token file is looked for by default).
// Its output has `[certificate] mode` decided: "acme" with a domain, "self-signed" without.
export function gatewayTomlSchema(dir: string) {
  return fileSchema(dir)
    // Only once every key is valid on its own: a rule over a value already refused is noise.
    .superRefine(checkRules, { when: (payload) => payload.issues.length === 0 })
    .transform((file) => ({ ...file, certificate: { ...file.certificate, mode: certificateMode(file) } }));
}

// A validated gateway.toml; keys keep the snake_case names of the file.
export type GatewayConfig = z.infer<ReturnType<typeof gatewayTomlSchema>>;
