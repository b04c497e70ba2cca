// Host ports no app may publish, whichever syntax declared them (issue 13 item 5). `"1-1024:1-1024"`
// took 22 and 53 from under sshd and the resolver, and a KMS port in a file was only refused by
// CreateVm, retried for ever. A static rule rather than a probe of the host's listening sockets:
// the same file gets the same answer on every pass, in `hash` and in tests, with no race.
import type { PortMapping } from '../vmm/messages.ts';

// A host port one of the host's own services holds; `owner` reads "the KMS's (init)".
export type ReservedPort = { protocol: string; port: number; owner: string };

// What decides: the ports below 1024 supervisor.toml `[apps] privileged_ports` lets apps publish,
// and the ports init gave the host's own services.
export type HostPortPolicy = { privileged: readonly number[]; reserved: readonly ReservedPort[] };

// The well-known ports end here; below it is where the host's own services listen.
export const FIRST_UNPRIVILEGED_PORT = 1024;

// The well-known ports apps may publish unless supervisor.toml says otherwise: the web's, which a
// Tier 1 app is most often asked to serve on; the rest (22, 25, 53, 111, …) stay the host's.
export const DEFAULT_PRIVILEGED_PORTS: readonly number[] = [80, 443];

// supervisor.toml's defaults with nothing reserved: what a caller that knows no better gets.
export const DEFAULT_HOST_PORT_POLICY: HostPortPolicy = { privileged: DEFAULT_PRIVILEGED_PORTS, reserved: [] };

// Why `mapping` may not be published, one clause naming the port, its owner or the key that
// allows it; undefined when it may.
export function hostPortProblem(policy: HostPortPolicy, mapping: PortMapping): string | undefined {
  const port = `${mapping.host_port}/${mapping.protocol}`;
  const reserved = policy.reserved.find((r) => r.port === mapping.host_port && r.protocol === mapping.protocol);
  if (reserved) return `host port ${port} is ${reserved.owner}; publish the app on another port`;
  if (mapping.host_port >= FIRST_UNPRIVILEGED_PORT || policy.privileged.includes(mapping.host_port)) return undefined;
  const allowed = policy.privileged.length === 0 ? 'empty now' : `now ${[...policy.privileged].sort((a, b) => a - b).join(', ')}`;
  return (
    `host port ${port} is below ${FIRST_UNPRIVILEGED_PORT}, where the host's own services listen (sshd 22, DNS 53); ` +
    `publish the app on a port from ${FIRST_UNPRIVILEGED_PORT} up, or add ${mapping.host_port} to supervisor.toml ` +
    `[apps] privileged_ports (${allowed})`
  );
}
