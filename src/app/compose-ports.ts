// Host port mappings derived from the compose file's own `ports:` (docs/design.md "Ports"). Direct
// mapping: "9300:80" makes the CVM publish 9300 itself, so the host forwards 9300 → CVM 9300; the
// container port stays compose's business inside the CVM. Syntax follows compose (short form as
// docker's ParsePortSpec splits it, long form with target/published/host_ip/protocol).
import type { PortMapping } from '../vmm/messages.ts';
import { PORT_PROTOCOLS, parseHostAddress, parsePortRange } from './port-rules.ts';
import type { DeclaredPort } from './port-rules.ts';
import type { ComposeService, PortEntry } from './schema.ts';
import { errorAt } from './source.ts';
import type { DataPath, Source } from './source.ts';
import type { AppWarning } from './warning.ts';

// What the services publish on the host, plus warnings for ports the host cannot reach.
export type DerivedPorts = { declared: DeclaredPort[]; warnings: AppWarning[] };

// A port entry reduced to its parts; `hostPorts` empty means compose picks an ephemeral port.
type PortParts = { protocol: string; address: string | undefined; hostPorts: number[]; containerPorts: number[] };

// Every TCP and UDP port once: a file past it publishes a port twice, and ranges must not make
// unbounded work (100 services of "20000-40000:20000-40000", 5 KB, made 2 M mappings in 2 s).
const MAX_HOST_PORTS = 2 * 65535;

// Derive every published port of every active service, in file order (callers sort).
export function deriveComposePorts(
  source: Source,
  services: Readonly<Record<string, ComposeService>>,
  defaultAddress: string,
): DerivedPorts {
  const declared: DeclaredPort[] = [];
  const warnings: AppWarning[] = [];
  for (const [service, spec] of Object.entries(services)) {
    // A service in a profile only starts when that profile is active, and nothing activates one
    // inside the CVM, so it publishes nothing (the compatibility pass says so).
    if (spec.profiles && spec.profiles.length > 0) continue;
    // With host networking compose drops `ports:`; the service listens on CVM ports directly.
    if (spec['network_mode'] === 'host') continue;
    (spec.ports ?? []).forEach((entry, index) => {
      const path = ['services', service, 'ports', index];
      const parts = splitPortEntry(source, path, entry);
      const label = `service ${service} (${describeEntry(entry)})`;
      if (parts.address !== undefined && !ANY_ADDRESS.has(parts.address)) {
        warnings.push({ service, key: 'ports', message: boundInsideWarning(describeEntry(entry), parts) });
      }
      if (parts.hostPorts.length === 0) {
        warnings.push({
          service,
          key: 'ports',
          message:
            `${describeEntry(entry)} has no host port, so compose publishes container port ${parts.containerPorts.join('-')} ` +
            'on an ephemeral CVM port that the host does not forward: it is not reachable from the host. ' +
            'Give it a host port ("8080:80"), or use `expose:` if only other services need it',
        });
        return;
      }
      for (const mapping of pairPorts(source, path, parts, defaultAddress)) declared.push({ mapping, path, owner: label });
      if (declared.length > MAX_HOST_PORTS) {
        const problem =
          `publishes more than ${MAX_HOST_PORTS} host ports with the entries up to here, more than there are (65535 TCP and ` +
          '65535 UDP), so some are published twice; publish each host port once';
        throw errorAt(source, 'APP_PORTS', path, problem);
      }
    });
  }
  return { declared, warnings };
}

// The docker inside the CVM binds the host IP too. Forwarded traffic arrives at the CVM's own
// network address, so only a wildcard bind receives it.
const ANY_ADDRESS = new Set(['0.0.0.0', '::']);

function boundInsideWarning(entry: string, parts: PortParts): string {
  const address = parts.address ?? '';
  const inside = isLoopback(address)
    ? `binds ${address} inside the CVM too, where forwarded traffic does not arrive (it reaches the CVM's own address), ` +
      'so the port is likely unreachable'
    : `makes the CVM's docker bind ${address}, an address the CVM does not have, so the container fails to start`;
  const hostAddress = address.includes(':') ? `[${address}]` : address;
  const port = parts.hostPorts[0] ?? parts.containerPorts[0];
  return (
    `${entry} ${inside}; drop the IP so the CVM publishes on all its addresses (the host side then uses [apps] port_address), ` +
    `or pick the host address with x-dstack.ports (e.g. "${parts.protocol}:${hostAddress}:${port}:${port}")`
  );
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.');
}

function describeEntry(entry: PortEntry): string {
  return typeof entry === 'object' ? `target ${String(entry.target)}` : JSON.stringify(String(entry));
}

function splitPortEntry(source: Source, path: DataPath, entry: PortEntry): PortParts {
  if (typeof entry === 'number') return splitShort(source, path, String(entry));
  if (typeof entry === 'string') return splitShort(source, path, entry);
  const published = entry.published === undefined ? '' : checkLiteral(source, path, String(entry.published));
  return {
    protocol: checkProtocol(source, path, entry.protocol ?? 'tcp'),
    address: entry.host_ip === undefined ? undefined : checkAddress(source, path, entry.host_ip),
    hostPorts: published === '' || published === '0' ? [] : checkRange(source, path, published, 'published'),
    containerPorts: checkRange(source, path, String(entry.target), 'target'),
  };
}

// `[IP:][HOST:]CONTAINER[/PROTO]`, IP possibly `[v6]` or bare v6: split from the right, as docker does.
function splitShort(source: Source, path: DataPath, entry: string): PortParts {
  const text = checkLiteral(source, path, entry);
  const slash = text.lastIndexOf('/');
  const protocol = checkProtocol(source, path, slash === -1 ? 'tcp' : text.slice(slash + 1));
  const parts = (slash === -1 ? text : text.slice(0, slash)).split(':');
  const container = parts.pop() ?? '';
  const host = parts.pop() ?? '';
  const ip = parts.join(':');
  return {
    protocol,
    address: ip === '' ? undefined : checkAddress(source, path, ip),
    hostPorts: host === '' || host === '0' ? [] : checkRange(source, path, host, 'host port'),
    containerPorts: checkRange(source, path, container, 'container port'),
  };
}

// One host port per container port; the CVM side of each mapping is the host port itself.
function pairPorts(source: Source, path: DataPath, parts: PortParts, defaultAddress: string): PortMapping[] {
  const { hostPorts, containerPorts } = parts;
  if (hostPorts.length !== containerPorts.length) {
    const why =
      containerPorts.length === 1
        ? 'a host range for one container port lets compose pick any one of them, and the host cannot know which'
        : 'the host and container ranges differ in length';
    throw errorAt(source, 'APP_PORTS', path, `${why}; give one host port per container port ("8080-8081:80-81")`);
  }
  return hostPorts.map((port) => ({
    protocol: parts.protocol,
    host_port: port,
    vm_port: port,
    host_address: parts.address ?? defaultAddress,
  }));
}

// Ports decide host mappings before the CVM exists, so `${PORT}` (resolved inside it) cannot be used.
function checkLiteral(source: Source, path: DataPath, text: string): string {
  if (!text.includes('$')) return text;
  const problem =
    `${JSON.stringify(text)} uses \${...} interpolation; the host never sees those values, ` +
    'so write the port numbers literally';
  throw errorAt(source, 'APP_PORTS', path, problem);
}

function checkProtocol(source: Source, path: DataPath, protocol: string): string {
  const lower = protocol.toLowerCase();
  if ((PORT_PROTOCOLS as readonly string[]).includes(lower)) return lower;
  const problem = `protocol ${JSON.stringify(protocol)} cannot be forwarded; dstack-vmm maps tcp and udp only`;
  throw errorAt(source, 'APP_PORTS', path, problem);
}

function checkAddress(source: Source, path: DataPath, text: string): string {
  const address = parseHostAddress(text);
  if (address !== undefined) return address;
  throw errorAt(source, 'APP_PORTS', path, `host IP ${JSON.stringify(text)} is not an IP address; write e.g. 127.0.0.1 or [::1]`);
}

function checkRange(source: Source, path: DataPath, text: string, what: string): number[] {
  const ports = parsePortRange(text);
  if (ports !== undefined) return ports;
  throw errorAt(source, 'APP_PORTS', path, `${what} ${JSON.stringify(text)} is not a port 1-65535 or a range like 8080-8081`);
}
