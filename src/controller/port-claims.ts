// Host ports are a shared resource across apps: the app that holds a port keeps it, a later app
// asking for it is refused with an error naming both (docs/design.md "Ports").
import { compareCodeUnits } from '../app/port-rules.ts';
import type { AppRecord } from '../state/record.ts';
import type { VmInfo } from '../vmm/messages.ts';

export type PortClaim = { protocol: string; host_port: number };

export type PortClaimant = {
  name: string;
  file: string;
  ports: readonly PortClaim[];
  // Apps that already run with these ports are served first, so a new file never evicts them.
  holds: boolean;
  // The VM of an app whose file is not valid: its ports will not move, so it is served before all.
  fixed?: boolean;
};

export type PortConflict = { app: string; file: string; port: PortClaim; owner: string; ownerFile: string };

const keyOf = (p: PortClaim) => `${p.protocol}/${p.host_port}`;

// Decide which claimants get their ports; returns the refused ones, keyed by app name.
export function resolvePortClaims(claimants: readonly PortClaimant[]): Map<string, PortConflict> {
  const ordered = [...claimants].sort(
    (a, b) => Number(b.fixed ?? false) - Number(a.fixed ?? false) || Number(b.holds) - Number(a.holds) || compareCodeUnits(a.name, b.name),
  );
  const owners = new Map<string, PortClaimant>();
  const refused = new Map<string, PortConflict>();
  for (const c of ordered) {
    const clash = c.ports.map((port) => ({ port, owner: owners.get(keyOf(port)) })).find((x) => x.owner);
    if (clash?.owner) {
      refused.set(c.name, { app: c.name, file: c.file, port: clash.port, owner: clash.owner.name, ownerFile: clash.owner.file });
      continue;
    }
    for (const p of c.ports) owners.set(keyOf(p), c);
  }
  return refused;
}

// The status code of an app refused because another app already publishes one of its host ports.
export const PORT_CONFLICT = 'APP_PORT_CONFLICT';

// A port an app's VM still publishes although its file no longer asks for it: the VMM counts it
// until UpdateVm gives the VM its new ports, and the guest binds it until the upgrade restarts it.
export type PortRelease = { name: string; file: string; ports: readonly PortClaim[] };

// The host ports `vm`'s guest binds now: while an operation that changed its manifest has not
// restarted it, those it was launched with (recorded when the operation began: QEMU keeps its
// forwards until it stops); else those its manifest names; none while it is down.
export function portsOfGuest(record: AppRecord, vm: VmInfo): PortClaim[] {
  if (vm.status === 'stopped' || vm.status === 'exited') return [];
  const open = record.intent;
  if (open?.guestPorts !== undefined && open.launched !== true && record.vmId === vm.id) return open.guestPorts;
  return manifestPorts(vm);
}

// The host ports `vm`'s manifest names: what the VMM checks a new port against.
export function manifestPorts(vm: VmInfo): PortClaim[] {
  return (vm.configuration?.ports ?? []).map((p) => ({ protocol: p.protocol, host_port: p.host_port }));
}

// The ports of `held` that `wanted` does not name.
export function portsLeft(held: readonly PortClaim[], wanted: readonly PortClaim[]): PortClaim[] {
  const kept = new Set(wanted.map(keyOf));
  return held.filter((p) => !kept.has(keyOf(p)));
}

// Which claimants must wait for a port another app's VM has not let go of yet (`waits`), and which
// of those wait for each other in a cycle (two apps swapping ports): neither VM can take the other's
// port first, so those are refused (`deadlocked`), with the app they wait for.
export function resolvePortWaits(
  claimants: readonly Pick<PortClaimant, 'name' | 'file' | 'ports'>[],
  releases: readonly PortRelease[],
): { waits: Map<string, PortConflict>; deadlocked: Map<string, PortConflict> } {
  const releasedBy = new Map<string, PortRelease>();
  for (const r of releases) for (const p of r.ports) releasedBy.set(keyOf(p), r);
  const waits = new Map<string, PortConflict>();
  const edges = new Map<string, Set<string>>();
  for (const c of claimants) {
    for (const port of c.ports) {
      const owner = releasedBy.get(keyOf(port));
      if (owner === undefined || owner.name === c.name) continue;
      if (!waits.has(c.name)) waits.set(c.name, { app: c.name, file: c.file, port, owner: owner.name, ownerFile: owner.file });
      edges.set(c.name, (edges.get(c.name) ?? new Set()).add(owner.name));
    }
  }
  const deadlocked = new Map<string, PortConflict>();
  for (const [name, wait] of waits) if (reaches(edges, name, name)) deadlocked.set(name, wait);
  for (const name of deadlocked.keys()) waits.delete(name);
  return { waits, deadlocked };
}

// Whether `to` can be reached from `from`'s successors.
function reaches(edges: ReadonlyMap<string, ReadonlySet<string>>, from: string, to: string): boolean {
  const seen = new Set<string>();
  const stack = [...(edges.get(from) ?? [])];
  while (stack.length > 0) {
    const next = stack.pop() as string;
    if (next === to) return true;
    if (seen.has(next)) continue;
    seen.add(next);
    stack.push(...(edges.get(next) ?? []));
  }
  return false;
}

// The status code of an app that waits for a port another app's VM is moving away from.
export const PORT_WAIT = 'APP_PORT_WAIT';

// The operator-facing text for a claim that waits (STYLE 7).
export function describePortWait(w: PortConflict): string {
  return (
    `${w.file}: port ${w.port.host_port}/${w.port.protocol} is still published by the VM of app "${w.owner}" (${w.ownerFile}), ` +
    'which lets go of it when its upgrade restarts it on its new ports; this app goes ahead then'
  );
}

// The operator-facing text for apps that wait for each other's ports.
export function describePortDeadlock(w: PortConflict): string {
  return (
    `${w.file}: port ${w.port.host_port}/${w.port.protocol} is published by the VM of app "${w.owner}" (${w.ownerFile}), ` +
    'which in turn waits for a port this app\'s VM publishes: neither can move first. Move one of them to a port no app uses, ' +
    'then to the one you want'
  );
}

// The operator-facing text for a refused claim (STYLE 7).
export function describePortConflict(c: PortConflict): string {
  return (
    `${c.file}: port ${c.port.host_port}/${c.port.protocol} is already published by app "${c.owner}" ` +
    `(${c.ownerFile}); change one of them`
  );
}
