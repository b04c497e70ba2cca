// Rules every host port mapping obeys, whichever syntax declared it: numbers in 1–65535, none the
// host keeps for itself (host-ports.ts), at most one mapping per (protocol, host port) inside one
// file (the VMM refuses a second one anyway, with a less helpful message), and one stable order so
// equal files give equal VmConfigurations.
import { isIP } from 'node:net';
import type { PortMapping } from '../vmm/messages.ts';
import { hostPortProblem } from './host-ports.ts';
import type { HostPortPolicy } from './host-ports.ts';
import { errorAt, formatPath } from './source.ts';
import type { DataPath, Source } from './source.ts';

// A mapping together with the YAML node that declared it, for error messages.
export type DeclaredPort = { mapping: PortMapping; path: DataPath; owner: string };

// The protocols dstack-vmm forwards.
export const PORT_PROTOCOLS = ['tcp', 'udp'] as const;

// A decimal port 1–65535, or undefined when `text` is anything else.
export function parsePortNumber(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}

// `80` or `8080-8081` → every port in it, or undefined when malformed or reversed.
export function parsePortRange(text: string): number[] | undefined {
  const [first = '', last = first, extra] = text.split('-');
  if (extra !== undefined) return undefined;
  const from = parsePortNumber(first);
  const to = parsePortNumber(last);
  if (from === undefined || to === undefined || to < from) return undefined;
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

// An IP literal as the VMM's host_address wants it: brackets of `[::1]` removed.
export function parseHostAddress(text: string): string | undefined {
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  return isIP(bare) === 0 ? undefined : bare;
}

// Refuse a host port `policy` keeps from apps, or a (protocol, host port) declared twice, naming
// the declarations; return the sorted list.
export function checkPortMappings(source: Source, declared: readonly DeclaredPort[], policy: HostPortPolicy): PortMapping[] {
  const seen = new Map<string, DeclaredPort>();
  for (const d of declared) {
    const problem = hostPortProblem(policy, d.mapping);
    // A compose entry is named with its text ("1-1024:1-1024"); an x-dstack one by its path alone.
    if (problem !== undefined) throw errorAt(source, 'APP_PORTS', d.path, d.owner === formatPath(d.path) ? problem : `${d.owner}: ${problem}`);
    const key = `${d.mapping.host_port}/${d.mapping.protocol}`;
    const first = seen.get(key);
    if (first) {
      throw errorAt(
        source,
        'APP_PORTS',
        d.path,
        `host port ${key} is published twice (${first.owner} and ${d.owner}); a host port maps to one CVM port, ` +
          'so drop or renumber one of them',
      );
    }
    seen.set(key, d);
  }
  return sortPortMappings(declared.map((d) => d.mapping));
}

// Plain code-unit comparison, not localeCompare: the order never depends on the host's locale,
// and ICU's collator stays unloaded (~4 MB of the idle process, bench/idle.ts).
export const compareCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

// Deterministic order: protocol, host port, then the rest (only to break ties in odd inputs).
export function sortPortMappings(ports: readonly PortMapping[]): PortMapping[] {
  const order = compareCodeUnits;
  return [...ports].sort(
    (a, b) =>
      order(a.protocol, b.protocol) || a.host_port - b.host_port || order(a.host_address, b.host_address) || a.vm_port - b.vm_port,
  );
}
