// How long the supervisor waits for the gateway's wildcard certificate before asking the gateway
// to issue it again (RenewZtDomainCert, whose error is the only place an issuance failure shows).
// A failed ask doubles the wait before the next one, up to a cap: an account at Let's Encrypt's
// rate limit is not asked again every few seconds (failed orders count against it too). The CVM
// and its ACME account are kept whatever happens; only the asking slows down.

// Passes waited before the first ask, and the most passes ever waited between two asks.
export const FIRST_ASK_AFTER = 5;
export const MOST_WAITS = 5 * 2 ** 8;

// Kept across passes: passes waited since the last ask, and how many to wait before the next.
export type CertPatience = { waits: number; patience: number };

// `first`: passes before the first ask. FIRST_ASK_AFTER while the gateway's own attempt at a new
// domain is under way; 1 (this pass) after a change that no attempt of its own follows (a new
// ACME directory or DNS token), so an operator's fix is tried at once.
export function freshPatience(first = FIRST_ASK_AFTER): CertPatience {
  return { waits: 0, patience: first };
}

// One pass without the certificate: true when this pass should ask the gateway.
export function shouldAsk(p: CertPatience): boolean {
  p.waits += 1;
  if (p.waits < p.patience) return false;
  p.waits = 0;
  return true;
}

// What the ask came to: a failure doubles the wait, an accepted ask keeps the pace.
export function asked(p: CertPatience, failed: boolean): void {
  if (failed) p.patience = Math.min(p.patience * 2, MOST_WAITS);
}
