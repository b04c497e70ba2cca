// Fault injection for the simulated gateway, shaped like the VMM's (faults.ts): failed calls,
// with the "applied, then the reply failed" case, and failed certificate issuance. It outlives a
// gateway restart, so the host creates it once per gateway VM.
import type { FailOptions } from './faults.ts';
import { GatewayRejection } from './gateway-store.ts';

// How ACME issuance fails: Let's Encrypt's rate limit, a Cloudflare token that may not edit DNS,
// or a token that sees no zone for the domain.
export type IssuanceFault = 'none' | 'rate-limited' | 'dns-forbidden' | 'no-zone';

// What tests call.
export type GatewayFaults = {
  // Fail the next `count` (default 1) calls of an admin method, or of `RegisterCvm`, with
  // `message`; with `afterApply` the call takes effect first.
  failNext: (method: string, options?: FailOptions) => void;
  // Every issuance attempt fails this way from now on; 'none' lets them succeed again.
  setIssuanceFault: (fault: IssuanceFault) => void;
  // Every admin method and registration called so far, in order (after the auth check).
  calls: () => string[];
  // Drop pending failures and the issuance fault.
  reset: () => void;
};

// The gateway's side: run `apply` for `method` unless a failure is due.
export type GatewayGate = <T>(method: string, apply: () => T | Promise<T>) => Promise<T>;

// The faults with the two hooks the gateway consults.
export type GatewayFaultHooks = { faults: GatewayFaults; gate: GatewayGate; issuanceFault: () => IssuanceFault };

// A fresh fault set with nothing injected.
export function createGatewayFaults(): GatewayFaultHooks {
  const failures = new Map<string, Required<FailOptions>[]>();
  const log: string[] = [];
  let issuance: IssuanceFault = 'none';

  const gate: GatewayGate = async (method, apply) => {
    log.push(method);
    const failure = failures.get(method)?.shift();
    if (failure === undefined) return apply();
    if (failure.afterApply) await apply();
    throw new GatewayRejection(failure.message);
  };

  const faults: GatewayFaults = {
    failNext: (method, options = {}) => {
      const entry = { count: 1, message: `simulated failure of ${method}`, afterApply: false, ...options };
      const queue = failures.get(method) ?? [];
      for (let i = 0; i < entry.count; i += 1) queue.push(entry);
      failures.set(method, queue);
    },
    setIssuanceFault: (fault) => {
      issuance = fault;
    },
    calls: () => [...log],
    reset: () => {
      failures.clear();
      issuance = 'none';
    },
  };
  return { faults, gate, issuanceFault: () => issuance };
}
