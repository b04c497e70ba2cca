// The base domain apps are named under: `<app_id>-<port>.<base>`. With `domain` it is that domain;
// without one (no-domain mode) it is `<a-b-c-d>.sslip.io`, which sslip.io's public DNS answers with
// a.b.c.d, so names resolve to the host with no DNS of the operator's own.
import { isIPv4 } from 'node:net';

// Public wildcard-DNS zones: anyone's names live in them, but only their owners can write the
// `_acme-challenge` TXT record DNS-01 needs, so no ACME certificate can be had under them
// (docs/dstack.md, Gateway; sslip.io was also refused a Let's Encrypt rate-limit increase, cunnie/sslip.io#110).
const WILDCARD_DNS_ZONES = ['sslip.io', 'nip.io'] as const;

// The public wildcard-DNS zone `domain` lies in, or undefined.
export function wildcardDnsZone(domain: string): string | undefined {
  return WILDCARD_DNS_ZONES.find((zone) => domain === zone || domain.endsWith(`.${zone}`));
}

// The base domain, or the `public_ip` problem ("<problem>; <fix>") that leaves none. `publicIp` is
// the file's key, `hostAddress` the caller's fallback for it.
export function resolveBaseDomain(domain: string | undefined, publicIp: string | undefined, hostAddress: string | undefined): { domain: string } | { problem: string } {
  if (domain !== undefined) return { domain };
  const address = publicIp ?? hostAddress;
  const fix = 'set public_ip = "203.0.113.7" (the host\'s public IPv4 address), or set domain';
  if (address === undefined) {
    return { problem: `is needed when there is no domain (apps are then named under <a-b-c-d>.sslip.io from it) and the host address is not known; ${fix}` };
  }
  if (!isIPv4(address)) {
    return { problem: `is needed when there is no domain (apps are then named under <a-b-c-d>.sslip.io from it), and the host address ${address} is not an IPv4 address; ${fix}` };
  }
  return { domain: `${address.replaceAll('.', '-')}.sslip.io` };
}
