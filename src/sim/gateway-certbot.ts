// The gateway's certbot (dstack/gateway/src/distributed_certbot.rs, main_service.rs
// `start_certbot_task`, `start_zt_domain_watch_task`) with the ACME DNS-01 exchange replaced by
// a signature from the CA the simulation is given. When it runs and what it checks are
// upstream's: a new ZT-domain is tried once in the background, every domain at start and then
// every `renew_interval_secs`, and RenewZtDomainCert on demand; each attempt needs the domain's
// DNS credential (or the default one) and skips a certificate outside the renewal window. The
// node's ACME account is kept as the pinned gateway-v0.5.8 keeps it (accountFor).
import { randomBytes, X509Certificate } from 'node:crypto';
import { issueServerCert, type Issued } from '../init/tls.ts';
import type { IssuanceFault } from './gateway-faults.ts';
import { credentialFor, GatewayRejection, type AcmeAccount, type CertData, type GatewayStore } from './gateway-store.ts';
import type { Scheduler } from './scheduler.ts';

// What the certbot needs from the gateway around it.
export type CertbotDeps = {
  store: GatewayStore;
  ca: Issued;
  nodeId: number;
  scheduler: Scheduler;
  // How long one ACME exchange takes (upstream: seconds to minutes of DNS propagation).
  issueDelayMs: number;
  issuanceFault: () => IssuanceFault;
  // A new certificate is stored: the proxy loads it.
  loaded: (domain: string, cert: CertData) => void;
  log: (line: string) => void;
};

// The certbot's entry points.
export type Certbot = {
  // init_all and the renewal loop: try every domain now, then every renew_interval_secs.
  start: () => void;
  // A ZT-domain was added: one background attempt, errors only logged.
  domainAdded: (domain: string) => void;
  // RenewZtDomainCert: renew now (or only inside the window unless `force`); errors are thrown.
  renew: (domain: string, force: boolean) => Promise<{ renewed: boolean; not_after: number }>;
};

// The directory an empty acme_url stands for (distributed_certbot.rs DEFAULT_ACME_URL).
const DEFAULT_ACME_URL = 'https://acme-v02.api.letsencrypt.org/directory';

// Upstream re-checks a disabled (zero) renewal interval every minute.
const DISABLED_RECHECK_MS = 60_000;

// Build the certbot over `deps`.
export function createCertbot(deps: CertbotDeps): Certbot {
  const { store } = deps;
  // Domains with an attempt in flight: upstream's per-domain KV lock.
  const locked = new Set<string>();

  // try_renew: true when a certificate was issued.
  const tryRenew = async (domain: string, force: boolean): Promise<boolean> => {
    const config = store.domains.get(domain);
    if (config === undefined) throw new GatewayRejection('ZT-Domain config not found');
    const current = store.certs.get(domain);
    const nowSecs = Math.floor(Date.now() / 1000);
    const due = force || current === undefined || current.notAfter - nowSecs < store.certbot.renew_before_expiration_secs;
    if (!due || locked.has(domain)) return false;
    locked.add(domain);
    try {
      const context = current === undefined ? 'failed to request new certificate' : 'failed to renew certificate';
      credentialFor(store, config);
      await deps.scheduler.sleep(deps.issueDelayMs);
      const failure = issuanceFailure(deps.issuanceFault(), domain);
      if (failure?.beforeOrder) throw new GatewayRejection(failure.message);
      accountFor(store, deps.log);
      if (failure !== undefined) throw new GatewayRejection(`${context}: ${failure.message}`);
      const cert = issueWildcard(domain, deps.ca, deps.nodeId);
      store.certs.set(domain, cert);
      deps.loaded(domain, cert);
      return true;
    } finally {
      locked.delete(domain);
    }
  };

  const background = (domain: string, what: string): void => {
    tryRenew(domain, false).then(
      (renewed) => deps.log(renewed ? `cert[${domain}]: successfully issued/renewed` : `cert[${domain}]: renewal not needed or already in progress`),
      (err: unknown) => deps.log(`cert[${domain}]: ${what} failed: ${err instanceof Error ? err.message : String(err)}`),
    );
  };

  const renewAll = (): void => {
    for (const domain of [...store.domains.keys()].sort()) background(domain, 'renewal');
  };

  const loop = (): void => {
    const intervalMs = store.certbot.renew_interval_secs * 1000;
    deps.scheduler.after(intervalMs === 0 ? DISABLED_RECHECK_MS : intervalMs, () => {
      if (intervalMs !== 0) renewAll();
      loop();
    });
  };

  return {
    start: () => {
      renewAll();
      loop();
    },
    domainAdded: (domain) => background(domain, 'auto-renewal'),
    renew: async (domain, force) => {
      try {
        const renewed = await tryRenew(domain, force);
        return { renewed, not_after: renewed ? (store.certs.get(domain)?.notAfter ?? 0) : 0 };
      } catch (err) {
        throw new GatewayRejection(`certificate renewal failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    },
  };
}

// get_or_create_acme_client as the pinned gateway-v0.5.8 has it: the node's one ACME account,
// registered at the first attempt that gets past building the DNS client, kept in the store and
// used by every later attempt; registered anew when the stored one belongs to another directory
// (a changed acme_url). HEAD (312dc605) refuses that case instead ("call RotateAcmeCredentials to
// switch directories"), an admin method 0.5.8 does not have. Registration itself never fails here.
function accountFor(store: GatewayStore, log: (line: string) => void): AcmeAccount {
  const directory = store.certbot.acme_url === '' ? DEFAULT_ACME_URL : store.certbot.acme_url;
  if (store.acmeAccount?.directory === directory) return store.acmeAccount;
  if (store.acmeAccount !== undefined) log('ACME URL mismatch in KvStore credentials, will create new account');
  log(`creating new global ACME account at ${directory}`);
  const origin = URL.canParse(directory) ? new URL(directory).origin : 'https://acme.invalid';
  store.acmeAccount = { directory, uri: `${origin}/acme/acct/${randomBytes(8).readBigUInt64BE().toString()}` };
  return store.acmeAccount;
}

// The error an injected fault produces, worded like the upstream chain it stands for. Zone
// lookup happens while the ACME client is built, before the order and its context.
function issuanceFailure(fault: IssuanceFault, domain: string): { message: string; beforeOrder: boolean } | undefined {
  switch (fault) {
    case 'none':
      return undefined;
    case 'no-zone':
      return { message: `no matching zone found for base_domain: ${domain}`, beforeOrder: true };
    case 'dns-forbidden':
      return {
        message: 'failed to create dns record: failed to add record: {"success":false,"errors":[{"code":10000,"message":"Authentication error"}],"messages":[],"result":null}',
        beforeOrder: false,
      };
    case 'rate-limited':
      return {
        message: `failed to cread new order: urn:ietf:params:acme:error:rateLimited: too many certificates (5) already issued for this exact set of identifiers in the last 168h0m0s (*.${domain})`,
        beforeOrder: false,
      };
  }
}

// The wildcard `*.<domain>`, signed by the CA; X.509 validity and the stored times are wall-clock
// because the TLS client checks them against the real time.
function issueWildcard(domain: string, ca: Issued, nodeId: number): CertData {
  const now = Date.now();
  const issued = issueServerCert({ dns: [`*.${domain}`], ips: [] }, ca, now);
  const notAfter = Math.floor(new X509Certificate(issued.certPem).validToDate.getTime() / 1000);
  return { certPem: issued.certPem, keyPem: issued.keyPem, notAfter, issuedAt: Math.floor(now / 1000), issuedBy: nodeId };
}
