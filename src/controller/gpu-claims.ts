// The host's GPUs are a shared resource across apps, like host ports (port-claims.ts), decided
// once per pass so two apps never get the same GPU (issue 19): an app keeps the GPUs its VM has,
// a new or changed app gets only GPUs dstack-vmm lists as free and no other app's VM holds, and an
// app that cannot get its GPUs waits (phase pending) with the reason instead of failing a deploy.
import { canonicalPciAddress, describeGpuRequest, type GpuRequest } from '../app/gpus.ts';
import type { GpuInfo } from '../vmm/messages.ts';

// What a VM is given: attach_mode and the slots, as dstack-vmm spells them (ListGpus, VmInfo).
// In mode "all" the slots are those the VMM attached (or listed when it was granted), for status.
export type GpuGrant = { mode: 'listed' | 'all'; slots: string[] };

// One app that asks for GPUs this pass.
export type GpuClaimant = {
  name: string;
  file: string;
  request: GpuRequest;
  // The GPUs its VM is configured with, when it has a VM.
  current?: GpuGrant;
  // Its VM runs this very content: it keeps `current` (if that is what the file asks) whatever
  // ListGpus says now. A GPU that vanishes from the list changes nothing until the file changes.
  unchanged: boolean;
  // What the last pass granted it for this request: its CreateVm or UpdateVm may be on its way,
  // so the VMM does not show them on its VM yet.
  previous?: GpuGrant;
};

// Who holds a GPU, for the reason an app waits.
export type GpuHolder = { app: string; file: string } | { vm: string; id: string };

export type GpuInventory = {
  // ListGpus; undefined when it was not needed or failed (`error`).
  listed?: { gpus: readonly GpuInfo[]; allowAttachAll: boolean };
  error?: string;
  // GPUs the VMs of apps that claim nothing this pass hold (a held or deleted file, an app that
  // no longer asks), by canonical address: never given to another app.
  held: ReadonlyMap<string, GpuHolder>;
  // GPUs named by VMs no app owns: they block only while dstack-vmm says they are in use.
  foreign: ReadonlyMap<string, GpuHolder>;
};

export type GpuOutcome =
  | { kind: 'grant'; grant: GpuGrant }
  // Pending until GPUs free up.
  | { kind: 'wait'; reason: string }
  // The host refuses what the file asks for, whatever frees up.
  | { kind: 'refused'; reason: string };

// The status code of an app waiting for GPUs, and of one asking for all where that is refused.
export const GPU_UNAVAILABLE = 'APP_GPU_UNAVAILABLE';
export const GPU_ATTACH_ALL_REFUSED = 'APP_GPU_ATTACH_ALL';

type Listed = { address: string; info: GpuInfo };

// Decide every claimant's GPUs: those whose VM keeps what it has first, then those with a VM or a
// grant on its way, then new ones by name (code-unit order, the same on every host).
export function resolveGpuClaims(claimants: readonly GpuClaimant[], inventory: GpuInventory): Map<string, GpuOutcome> {
  const rank = (c: GpuClaimant) => (keepsCurrentGpus(c) ? 0 : c.current ? 1 : c.previous ? 2 : 3);
  const ordered = [...claimants].sort((a, b) => rank(a) - rank(b) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const taken = new Map<string, GpuHolder>(inventory.held);
  const outcomes = new Map<string, GpuOutcome>();
  for (const c of ordered) {
    const outcome = keepsCurrentGpus(c) ? { kind: 'grant' as const, grant: c.current as GpuGrant } : decide(c, inventory, taken);
    outcomes.set(c.name, outcome);
    if (outcome.kind !== 'grant') continue;
    for (const slot of outcome.grant.slots) taken.set(canonicalPciAddress(slot) ?? slot, { app: c.name, file: c.file });
  }
  return outcomes;
}

// Whether `grant` is what `request` asks for.
export function grantSatisfies(grant: GpuGrant, request: GpuRequest): boolean {
  if (request === 'all') return grant.mode === 'all';
  if (grant.mode !== 'listed') return false;
  if (typeof request === 'number') return grant.slots.length === request;
  const have = new Set(grant.slots.map((s) => canonicalPciAddress(s) ?? s));
  return have.size === request.length && request.every((s) => have.has(s));
}

// The PCI addresses of a grant in one form, for status ("0000:18:00.0"); [] for none.
export function grantAddresses(grant: GpuGrant | undefined): string[] {
  return (grant?.slots ?? []).map((slot) => canonicalPciAddress(slot) ?? slot);
}

// Whether two grants give a VM the same GPUs (none being undefined); mode "all" is all, whatever
// it resolved to.
export function sameGrant(a: GpuGrant | undefined, b: GpuGrant | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.mode === 'all' ? b.mode === 'all' : grantSatisfies(b, a.slots.map((s) => canonicalPciAddress(s) ?? s));
}

// Whether the claimant keeps what its VM has without asking the VMM anything.
export const keepsCurrentGpus = (c: GpuClaimant): boolean => c.unchanged && c.current !== undefined && grantSatisfies(c.current, c.request);

function decide(c: GpuClaimant, inventory: GpuInventory, taken: ReadonlyMap<string, GpuHolder>): GpuOutcome {
  const asks = `${c.file}: x-dstack.gpus asks for ${describeGpuRequest(c.request)}`;
  if (!inventory.listed) return { kind: 'wait', reason: `${asks}; the host's GPUs cannot be listed (ListGpus: ${inventory.error ?? 'not asked'}); it deploys once dstack-vmm lists them` };
  const { allowAttachAll } = inventory.listed;
  const listed: Listed[] = inventory.listed.gpus
    .map((info) => ({ address: canonicalPciAddress(info.slot) ?? info.slot, info }))
    .sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  const own = new Set([...(c.current?.slots ?? []), ...(c.previous?.slots ?? [])].map((s) => canonicalPciAddress(s) ?? s));
  // Why a listed GPU cannot be this app's now, or undefined when it can.
  const blocker = (g: Listed): GpuHolder | 'busy' | undefined => {
    const holder = taken.get(g.address);
    if (holder) return holder;
    return g.info.is_free || own.has(g.address) ? undefined : (inventory.foreign.get(g.address) ?? 'busy');
  };
  if (c.request === 'all') {
    if (!allowAttachAll) {
      return {
        kind: 'refused',
        reason:
          `${c.file}: x-dstack.gpus is "all", but dstack-vmm does not allow attaching all GPUs ([cvm.gpu] allow_attach_all = false in ` +
          'vmm.toml); ask for a number or list the GPUs (`gpus: 2`, `gpus: ["0000:18:00.0"]`), or set allow_attach_all = true and restart dstack-vmm',
      };
    }
    if (listed.length === 0) return { kind: 'wait', reason: `${asks}; ${NONE_LISTED}` };
    // "all" attaches every NVIDIA GPU of the host, listed or not: any other holder is in the way.
    const blocked = [...listed.flatMap((g) => withBlocker(g, blocker(g))), ...[...taken].filter(([a]) => !listed.some((g) => g.address === a))];
    if (blocked.length > 0) return { kind: 'wait', reason: `${asks}; ${describeBlocked(blocked)}; it deploys once they are free` };
    return { kind: 'grant', grant: { mode: 'all', slots: listed.map((g) => g.info.slot) } };
  }
  if (typeof c.request === 'number') {
    const count = c.request;
    const usable = listed.filter((g) => blocker(g) === undefined).sort((a, b) => Number(own.has(b.address)) - Number(own.has(a.address)));
    if (usable.length >= count) return { kind: 'grant', grant: { mode: 'listed', slots: usable.slice(0, count).map((g) => g.info.slot) } };
    if (listed.length === 0) return { kind: 'wait', reason: `${asks}; ${NONE_LISTED}` };
    const blocked = listed.flatMap((g) => withBlocker(g, blocker(g)));
    const short =
      listed.length < count
        ? `dstack-vmm lists only ${listed.length} (${listed.map((g) => g.address).join(', ')}); it waits until the host has ${count} ([cvm.gpu] in vmm.toml)`
        : `${usable.length} of the ${listed.length} dstack-vmm lists ${usable.length === 1 ? 'is' : 'are'} free: ${describeBlocked(blocked)}; it deploys once ${count} ${count === 1 ? 'is' : 'are'} free`;
    return { kind: 'wait', reason: `${asks}; ${short}` };
  }
  const problems: string[] = [];
  const slots: string[] = [];
  for (const address of c.request) {
    const g = listed.find((l) => l.address === address);
    const why = g === undefined ? undefined : blocker(g);
    if (g === undefined) problems.push(`${address} is not one dstack-vmm lists (${listed.length === 0 ? 'it lists none' : listed.map((l) => l.address).join(', ')})`);
    else if (why !== undefined) problems.push(describeBlocked([[address, why]]));
    else slots.push(g.info.slot);
  }
  if (problems.length > 0) return { kind: 'wait', reason: `${asks}; ${problems.join('; ')}; it deploys once they are free` };
  return { kind: 'grant', grant: { mode: 'listed', slots } };
}

const NONE_LISTED =
  'dstack-vmm lists no GPU ([cvm.gpu] enabled = false in vmm.toml, or no GPU of the host matches its listing, include and exclude); ' +
  'it waits until the VMM lists some';

function withBlocker(g: Listed, why: GpuHolder | 'busy' | undefined): [string, GpuHolder | 'busy'][] {
  return why === undefined ? [] : [[g.address, why]];
}

// `0000:18:00.0 and 0000:2a:00.0 are held by app "a" (apps.d/a.yaml), 0000:3a:00.0 is in use …`.
function describeBlocked(blocked: readonly (readonly [string, GpuHolder | 'busy'])[]): string {
  const groups = new Map<string, string[]>();
  for (const [address, holder] of blocked) {
    const who = holder === 'busy' ? "in use outside dstack-supervisor's apps (ListGpus: not free; a VM made by hand, or a host driver)" : describeHolder(holder);
    groups.set(who, [...(groups.get(who) ?? []), address]);
  }
  return [...groups].map(([who, addresses]) => `${addresses.join(' and ')} ${addresses.length === 1 ? 'is' : 'are'} ${who.startsWith('in use') ? who : `held by ${who}`}`).join(', ');
}

function describeHolder(holder: GpuHolder): string {
  return 'app' in holder ? `app "${holder.app}" (${holder.file})` : `VM "${holder.vm}" (${holder.id}), which dstack-supervisor does not manage`;
}
