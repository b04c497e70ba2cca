// Host ports are a shared resource across apps: the app that holds a port keeps it, a later app
// asking for it is refused with an error naming both (docs/design.md "Ports").
import { compareCodeUnits } from '../app/port-rules.ts';

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

// The operator-facing text for a refused claim (STYLE 7).
export function describePortConflict(c: PortConflict): string {
  return (
    `${c.file}: port ${c.port.host_port}/${c.port.protocol} is already published by app "${c.owner}" ` +
    `(${c.ownerFile}); change one of them`
  );
}
