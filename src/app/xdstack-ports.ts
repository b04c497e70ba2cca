// `x-dstack.ports`: explicit host mappings that replace the derived ones, written in the dstack
// CLI's `--port` forms (docs/dstack.md §4.1) so operators can copy them from upstream docs. Unlike
// the CLI there are no auto ports: a host port picked at deploy time would change on every
// redeploy, and the supervisor must know every port to detect conflicts between apps.
import type { PortMapping } from '../vmm/messages.ts';
import { PORT_PROTOCOLS, parseHostAddress, parsePortNumber } from './port-rules.ts';
import type { DeclaredPort } from './port-rules.ts';
import { errorAt } from './source.ts';
import type { DataPath, Source } from './source.ts';

const FORMS = 'HOST:VM, PROTO:HOST:VM or PROTO:ADDR:HOST:VM (e.g. "8080:80", "udp:0.0.0.0:5353:53")';

// Parse every entry of `x-dstack.ports`; `defaultAddress` fills a missing ADDR.
export function parseXdstackPorts(source: Source, entries: readonly unknown[], defaultAddress: string): DeclaredPort[] {
  return entries.map((entry, index) => {
    const path = ['x-dstack', 'ports', index];
    return { mapping: parseSpec(source, path, entry, defaultAddress), path, owner: `x-dstack.ports[${index}]` };
  });
}

function parseSpec(source: Source, path: DataPath, entry: unknown, defaultAddress: string): PortMapping {
  const fail = (problem: string) => errorAt(source, 'APP_PORTS', path, problem);
  if (typeof entry !== 'string' && typeof entry !== 'number') throw fail(`must be a string in one of the forms ${FORMS}`);
  const spec = String(entry);
  // A bracketed IPv6 ADDR holds colons of its own; take it out before splitting.
  const v6 = /^([^:]*):\[([^\]]*)\]:([^:]*):([^:]*)$/.exec(spec);
  const parts = v6 ? v6.slice(1) : spec.split(':');
  // HOST:VM and PROTO:HOST:VM leave out what the longest form spells.
  const [protocol, address, host, vm] =
    parts.length === 2
      ? ['tcp', defaultAddress, ...parts]
      : parts.length === 3
        ? [parts[0], defaultAddress, parts[1], parts[2]]
        : parts;
  if (parts.length === 1) throw fail(`${JSON.stringify(spec)} has no host port; x-dstack.ports needs ${FORMS}`);
  if (parts.length > 4 || protocol === undefined || address === undefined || host === undefined || vm === undefined) {
    throw fail(`${JSON.stringify(spec)} is not one of ${FORMS}`);
  }
  if (!(PORT_PROTOCOLS as readonly string[]).includes(protocol)) {
    throw fail(`${JSON.stringify(spec)}: protocol must be tcp or udp`);
  }
  if (host === '' || host === '0' || host === 'auto') {
    throw fail(`${JSON.stringify(spec)}: give a fixed host port; automatic host ports are not supported here`);
  }
  const hostPort = parsePortNumber(host);
  const vmPort = parsePortNumber(vm);
  if (hostPort === undefined || vmPort === undefined) throw fail(`${JSON.stringify(spec)}: ports must be numbers 1-65535`);
  const hostAddress = parseHostAddress(address);
  if (hostAddress === undefined) throw fail(`${JSON.stringify(spec)}: ${JSON.stringify(address)} is not an IP address`);
  return { protocol, host_port: hostPort, vm_port: vmPort, host_address: hostAddress };
}
