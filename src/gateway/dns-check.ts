// Does `*.<domain>` point at this host? Apps' https:// names are wildcard names under the base
// domain, and the gateway's certificate does not need them to resolve (DNS-01 writes a TXT
// record), so a missing or wrong A record shows only when someone outside tries a URL. The check
// asks for one name under the wildcard (a fresh label each time, so a cached NXDOMAIN from before
// the record was added does not linger) with node:dns, the resolvers from [gateway] dns_servers,
// and compares the answer with public_ip or, without it, this host's own addresses. It never holds
// the switch (README, "DNS is checked, not waited for"): registration inside the host needs no DNS.
import { randomBytes } from 'node:crypto';
import type * as dns from 'node:dns/promises';
import type { Clock } from '../clock.ts';
import type { Logger } from '../log/logger.ts';

// What `_gateway.json` says about DNS (its `dns` key).
export type DnsStatus = {
  // The record apps' names need, `*.<domain>`.
  record: string;
  // Where it should point: public_ip, or this host's addresses when that is not set.
  expected: string[];
  // What a name under it resolved to; [] when it did not resolve.
  resolved: string[];
  // The resolvers asked; [] = the host's own (/etc/resolv.conf).
  servers: string[];
  // null when it points at the host; else what is wrong and what to do.
  problem: string | null;
};

// Which domain, and the public_ip of gateway.toml if it sets one.
export type DnsTarget = { domain: string; publicIp: string | undefined };

// A name's A records; rejects with node:dns's error (`code` ENOTFOUND, ENODATA, ETIMEOUT, …).
export type ResolveA = (name: string) => Promise<string[]>;

export type DnsCheckDeps = {
  resolve: ResolveA;
  servers: readonly string[];
  // This host's IPv4 addresses, when public_ip is not set.
  hostAddresses: () => string[];
};

// Two tries of 2 s: a resolver that does not answer costs a pass at most 4 s, once per resync.
const QUERY_TIMEOUT_MS = 2_000;
const QUERY_TRIES = 2;

// A resolver asking `servers` (the host's own when empty).
export function createResolveA(servers: readonly string[]): ResolveA {
  // Not a top-level import: Tier 2's modules load at every start, and DNS is asked only once a
  // gateway serves.
  const { Resolver } = process.getBuiltinModule('node:dns/promises') as typeof dns;
  const resolver = new Resolver({ timeout: QUERY_TIMEOUT_MS, tries: QUERY_TRIES });
  if (servers.length > 0) resolver.setServers([...servers]);
  return (name) => resolver.resolve4(name);
}

// Ask once; `name` is the name that was asked (for the journal, not the status: it changes).
export async function checkWildcardDns(target: DnsTarget, deps: DnsCheckDeps): Promise<DnsStatus & { name: string }> {
  const record = `*.${target.domain}`;
  const name = `dns-check-${randomBytes(4).toString('hex')}.${target.domain}`;
  const expected = target.publicIp === undefined ? deps.hostAddresses() : [target.publicIp];
  const base = { record, expected, servers: [...deps.servers], name };
  const asked = deps.servers.length > 0 ? deps.servers.join(', ') : "the host's resolvers";
  const want = target.publicIp ?? (expected.length === 1 ? expected[0]! : "<this host's public IPv4 address>");
  const where = target.publicIp === undefined ? `this host's addresses (${expected.join(', ') || 'none found'}; set public_ip in gateway.toml if it is reached through NAT)` : `public_ip ${target.publicIp}`;
  const until = "; until it does, the apps' https:// names do not work from outside (they are switched anyway and keep their direct ports)";
  let resolved: string[];
  try {
    resolved = [...(await deps.resolve(name))].sort();
  } catch (err) {
    const code = err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : String(err);
    if (code !== 'ENOTFOUND' && code !== 'ENODATA') {
      const problem = `${record} could not be checked: asking ${asked} for a name under it failed (${code}); check [gateway] dns_servers in supervisor.toml or the host's /etc/resolv.conf (apps are switched anyway and keep their direct ports)`;
      return { ...base, resolved: [], problem };
    }
    const answer = code === 'ENOTFOUND' ? 'NXDOMAIN' : 'no A record';
    const problem = `${record} does not resolve (${asked} answered ${answer} for a name under it); add the DNS record "${record} A ${want}" at the domain's DNS provider, to point at ${where}${until}`;
    return { ...base, resolved: [], problem };
  }
  if (resolved.length > 0 && resolved.every((address) => expected.includes(address))) return { ...base, resolved, problem: null };
  const problem =
    `${record} resolves to ${resolved.join(', ')} (asked ${asked}), not to ${where}; make the record "${record} A ${want}" ` +
    `(DNS only: a proxied Cloudflare record resolves to Cloudflare's addresses, which do not route SNI to this host)${until}`;
  return { ...base, resolved, problem };
}

// Checks spaced by `intervalMs`, each result said in the journal once: a warning for a problem,
// one info line when it resolves (again). A new domain or public_ip is checked at once.
export type DnsMonitor = { observe: (target: DnsTarget) => Promise<DnsStatus> };

export function createDnsMonitor(deps: { check: (target: DnsTarget) => Promise<DnsStatus & { name: string }>; clock: Clock; intervalMs: number; log: Logger }): DnsMonitor {
  let last: { key: string; at: number; status: DnsStatus } | undefined;
  let said: string | undefined;
  return {
    async observe(target) {
      const key = JSON.stringify(target);
      const now = deps.clock.now();
      if (last !== undefined && last.key === key && now - last.at < deps.intervalMs) return last.status;
      const { name, ...status } = await deps.check(target);
      last = { key, at: now, status };
      const text = status.problem ?? `${status.record} resolves to ${status.resolved.join(', ')}, this host`;
      if (text !== said) {
        said = text;
        const fields = { APP: 'gateway', DNS_NAME: name, DNS_RESOLVED: status.resolved.join(',') };
        if (status.problem === null) deps.log.info(fields, `gateway: DNS: ${text}`);
        else deps.log.warn(fields, `gateway: DNS: ${text}`);
      }
      return status;
    },
  };
}
