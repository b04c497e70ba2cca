// The gateway's wildcard certificate for its ZT domain (issue 14): wait until it is served, asking
// the gateway to issue it again at a patient pace (cert-patience.ts), since its issuance errors
// show only in its log and in RenewZtDomainCert; and keep the one served from the ACME directory
// gateway.toml names. A changed `[certificate] staging` is a SetCertbotConfig in place
// (reconcile.ts), but a certificate already served stays valid and the gateway renews it only in
// its last 30 days (renew_before_expiration), so staging → production would keep an untrusted
// certificate for two months: as upstream's guide says to (gateway-v0.5.8
// docs/tutorials/gateway-service-setup.md, step 6), one renewal is forced.
//
// Which directory the served certificate came from is kept in `<state_dir>/gateway/certificate.json`
// with the certificate's `issued_at`: a certificate with another issued_at was issued after the
// supervisor last set acme_url, so from the directory set now. That is what ends a forced renewal,
// not RenewZtDomainCert's reply, which upstream sends only once the whole ACME exchange is over
// (minutes, past the admin client's timeout); so a renewal that outlasts the call is not forced a
// second time, and a restart in between neither forgets the renewal nor repeats it.
import { describeError } from '../errors.ts';
import type { GatewayAdmin } from './admin-client.ts';
import type { ZtDomainInfo } from './admin-messages.ts';
import { asked, freshPatience, shouldAsk, type CertPatience } from './cert-patience.ts';
import { GatewayAdminError } from './errors.ts';

// The served certificate of `domain`, by its issued_at (unix seconds), and the acme_url ('' = Let's
// Encrypt production) it was issued from.
export type CertOrigin = { domain: string; issuedAt: number; acmeUrl: string };

// The origin as kept on disk (start.ts); read returns undefined when none was kept.
export type CertOriginStore = { read: () => Promise<CertOrigin | undefined>; write: (origin: CertOrigin) => Promise<void> };

// Kept across steps: when to ask next, and why the last ask failed (the status between asks).
export type CertMemory = { cert: CertPatience; lastCertProblem?: string | undefined };

// Not served yet, with why; or served, with a note while a forced renewal is still to succeed.
export type CertificateState = { served: false; reason: string } | { served: true; note?: string };

// Where the certificate stands for `domain` (`status`: its cert_status in ListZtDomains), and one
// ask of the gateway when it is due.
export async function ensureCertificate(
  target: { domain: string; acmeUrl: string },
  status: ZtDomainInfo['cert_status'] | undefined,
  admin: GatewayAdmin,
  deps: { origin: CertOriginStore; memory: CertMemory },
): Promise<CertificateState> {
  const { domain, acmeUrl } = target;
  const { memory } = deps;
  if (!(status?.has_cert && status.loaded_in_memory)) {
    if (shouldAsk(memory.cert)) await ask(admin, domain, false, memory);
    const problem = memory.lastCertProblem;
    return { served: false, reason: problem === undefined ? `waiting for the certificate of *.${domain}` : `no certificate for *.${domain} yet: ${problem}` };
  }
  const origin = await deps.origin.read();
  // A certificate not seen before (the first of this domain, or a renewal, forced or the
  // gateway's own) is from the directory set now; so is one seen with that directory before. With
  // nothing kept (a state directory from before this file) the one served is taken as it is.
  if (origin === undefined || origin.domain !== domain || origin.issuedAt !== status.issued_at || origin.acmeUrl === acmeUrl) {
    if (origin?.domain !== domain || origin.issuedAt !== status.issued_at || origin.acmeUrl !== acmeUrl) {
      await deps.origin.write({ domain, issuedAt: status.issued_at, acmeUrl });
    }
    memory.cert = freshPatience();
    memory.lastCertProblem = undefined;
    return { served: true };
  }
  // Served, but from the directory set before: renewed by force at the same patient pace, and
  // served as it is meanwhile (a production rate limit must not take the staging certificate away).
  if (shouldAsk(memory.cert)) await ask(admin, domain, true, memory);
  const pending = memory.lastCertProblem === undefined ? 'renewing it from there' : `renewing it from there failed: ${memory.lastCertProblem}`;
  return { served: true, note: `the certificate served is still from ${directoryName(origin.acmeUrl)}, not ${directoryName(acmeUrl)}; ${pending}` };
}

// RenewZtDomainCert once. A refusal is kept, with the advice for it, in `memory.lastCertProblem`
// and doubles the wait before the next ask.
async function ask(admin: GatewayAdmin, domain: string, force: boolean, memory: CertMemory): Promise<void> {
  try {
    await admin.call('RenewZtDomainCert', { domain, force });
    asked(memory.cert, false);
    memory.lastCertProblem = undefined;
  } catch (err) {
    asked(memory.cert, true);
    const why = err instanceof GatewayAdminError && err.gatewayMessage ? err.gatewayMessage : describeError(err);
    memory.lastCertProblem = `${why}${adviceFor(why)}`;
  }
}

// An ACME directory by name.
function directoryName(acmeUrl: string): string {
  return acmeUrl === '' ? 'Let\'s Encrypt production' : acmeUrl;
}

// What to do about the issuance failures an operator can fix, recognised in the gateway's own
// message (its certbot's and Let's Encrypt's wording, docs/dstack.md "Gateway").
function adviceFor(message: string): string {
  if (/Authentication error|Unauthorized|forbidden|\b403\b/i.test(message)) {
    return '; the DNS token cannot edit the zone\'s records: give it Zone > DNS > Edit on that zone in Cloudflare, write it to [certificate] token_file, and the next step hands it over';
  }
  if (/no matching zone/i.test(message)) return '; no Cloudflare zone the token can see contains the domain: check the domain, and that the token has Zone > Zone > Read on its zone';
  if (/rateLimited|too many certificates/i.test(message)) {
    return '; Let\'s Encrypt\'s rate limit: issuance is retried later and the gateway CVM is kept (recreating it would make it worse); set [certificate] staging = true while testing';
  }
  return '';
}
