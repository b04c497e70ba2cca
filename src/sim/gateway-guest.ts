// The app guest's side of dstack-gateway: the gateway step of a gateway-enabled guest's boot
// (dstack/dstack-util/src/system_setup.rs `GatewayContext::setup`) and the checker that keeps its
// registration alive afterwards (dstack-util/src/gateway_checker.rs). Upstream at 312dc605.
//
// Reproduced:
// - The checks in upstream's order, both final (the checker exits 3 and stays stopped): no
//   gateway app id in the app keys → "Missing allowed dstack-gateway app id"; empty gateway_urls
//   → "Missing gateway urls".
// - The URLs tried in order, the first success wins, the first URL's error is the one reported:
//   "Failed to register CVM, all dstack-gateway urls are down: Failed to register CVM: <error>".
// - The checker: after a success it re-registers every `intervalMs` (REFRESH_INTERVAL, 180 s);
//   after failures it retries with a backoff of intervalMs/6 doubling up to intervalMs·2/3
//   (30 s → 120 s upstream).
// - A boot.error stays on the VMM after the checker recovers, until the VM restarts
//   (gateway_checker.rs says so; a comment in system_setup.rs claiming otherwise is stale).
// Differences:
// - The checker also re-registers at once when a simulated gateway comes up (upstream notices a
//   restarted gateway through a WireGuard handshake older than 180 s).
// - The guest unregisters when its VM stops or goes away (upstream the gateway's recycler drops
//   an instance whose handshakes went stale).
// - No WireGuard and no RA-TLS: registration is a direct call (gateway-cvm.ts says how a URL
//   finds its gateway).
import type { SetupGateway, GatewaySetupInput } from './vm-boot.ts';
import type { HostPort } from './vm-rules.ts';
import type { VmmState } from './vmm-state.ts';

// What a guest sends: the gateway app id it trusts, its ids, and its launched port forwards.
export type GuestRegistration = { gatewayAppId: string; appId: string; instanceId: string; ports: HostPort[] };

// Register at one gateway URL; resolves with the gateway VM's id (to unregister from later),
// rejects with the RPC client's error.
export type RegisterAt = (url: string, request: GuestRegistration) => Promise<string>;

// What the guests need from the host.
export type GatewayGuestDeps = {
  state: VmmState;
  registerAt: RegisterAt;
  unregister: (gatewayVmId: string, instanceId: string) => void;
  // REFRESH_INTERVAL; the retry backoff scales with it.
  intervalMs: number;
};

// The boot hook, and the nudge a gateway coming up gives every checker.
export type GatewayGuests = {
  setup: SetupGateway;
  refreshAll: () => void;
  close: () => void;
};

type Guest = {
  vmId: string;
  generation: number;
  input: GatewaySetupInput;
  appId: string;
  registeredWith: string | undefined;
  failures: number;
  // Bumped per scheduled check, so only the newest timer acts.
  round: number;
  busy: boolean;
  // A gateway came up during an attempt: check again right after it.
  again: boolean;
};

// The RPC URL a gateway URL means (system_setup.rs `gateway_rpc_url`).
export function gatewayRpcUrl(base: string): string {
  const trimmed = base.replace(/\/+$/, '');
  return trimmed.endsWith('/prpc') ? trimmed : `${trimmed}/prpc`;
}

// The RPC client's error for a RegisterCvm that got no answer (reqwest's wording).
export function unreachableError(url: string, detail: string): Error {
  return new Error(`error sending request for url (${gatewayRpcUrl(url)}/RegisterCvm): error trying to connect: ${detail}`);
}

// The setup of a host that simulates no gateway: the guest's checks, then nothing answers.
export const noGatewayAnswers: SetupGateway = async (_vm, input) =>
  configError(input) ?? allDown(unreachableError(input.gatewayUrls[0] ?? '', 'tcp connect error: Connection refused (os error 111)'));

// Follow `deps.state`: run the gateway step of each gateway-enabled boot, keep a checker per
// registered launch, and unregister a launch once its process has ended.
export function createGatewayGuests(deps: GatewayGuestDeps): GatewayGuests {
  const guests = new Map<string, Guest>();
  let closed = false;
  const live = (guest: Guest): boolean => !closed && guests.get(guest.vmId) === guest;

  const forget = (guest: Guest): void => {
    guests.delete(guest.vmId);
    if (guest.registeredWith !== undefined) deps.unregister(guest.registeredWith, guest.input.instanceId);
  };

  // One pass over the URLs; resolves to the error chain, or undefined once registered.
  const attempt = async (guest: Guest): Promise<string | undefined> => {
    guest.busy = true;
    let first: unknown;
    try {
      for (const url of guest.input.gatewayUrls) {
        const ports = deps.state.find(guest.vmId)?.launchedPorts ?? [];
        try {
          const gatewayVmId = await deps.registerAt(url, { gatewayAppId: guest.input.gatewayAppId, appId: guest.appId, instanceId: guest.input.instanceId, ports });
          if (!live(guest)) {
            deps.unregister(gatewayVmId, guest.input.instanceId);
            return undefined;
          }
          if (guest.registeredWith !== undefined && guest.registeredWith !== gatewayVmId) deps.unregister(guest.registeredWith, guest.input.instanceId);
          guest.registeredWith = gatewayVmId;
          guest.failures = 0;
          return undefined;
        } catch (err) {
          first ??= err;
        }
      }
      guest.failures += 1;
      return allDown(first);
    } finally {
      guest.busy = false;
    }
  };

  const schedule = (guest: Guest): void => {
    if (!live(guest)) return;
    guest.round += 1;
    const round = guest.round;
    const delay = guest.failures === 0 ? deps.intervalMs : Math.min((deps.intervalMs / 6) * 2 ** (guest.failures - 1), (deps.intervalMs * 2) / 3);
    deps.state.scheduler.after(delay, () => {
      if (live(guest) && guest.round === round) void check(guest);
    });
  };

  const check = async (guest: Guest): Promise<void> => {
    if (guest.busy) {
      guest.again = true;
      return;
    }
    await attempt(guest);
    if (guest.again && live(guest)) {
      guest.again = false;
      return check(guest);
    }
    schedule(guest);
  };

  const sync = (): void => {
    for (const guest of [...guests.values()]) {
      const vm = deps.state.find(guest.vmId);
      if (vm === undefined || !vm.running || vm.generation !== guest.generation) forget(guest);
    }
  };
  const unsubscribe = deps.state.onChange(sync);

  return {
    setup: async (vm, input) => {
      const error = configError(input);
      if (error !== undefined) return error;
      const previous = guests.get(vm.id);
      if (previous !== undefined) forget(previous);
      const guest: Guest = { vmId: vm.id, generation: vm.generation, input, appId: vm.appId, registeredWith: undefined, failures: 0, round: 0, busy: false, again: false };
      guests.set(vm.id, guest);
      const result = await attempt(guest);
      if (guest.again && live(guest)) {
        guest.again = false;
        void check(guest);
      } else schedule(guest);
      return result;
    },
    refreshAll: () => {
      for (const guest of guests.values()) void check(guest);
    },
    close: () => {
      closed = true;
      unsubscribe();
      guests.clear();
    },
  };
}

// The configuration errors no retry can fix, in upstream's order.
function configError(input: GatewaySetupInput): string | undefined {
  if (input.gatewayAppId === '') return 'Missing allowed dstack-gateway app id';
  if (input.gatewayUrls.length === 0) return 'Missing gateway urls';
  return undefined;
}

function allDown(first: unknown): string {
  const detail = first instanceof Error ? first.message : String(first);
  return `Failed to register CVM, all dstack-gateway urls are down: Failed to register CVM: ${detail}`;
}
