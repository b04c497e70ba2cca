// The host ports the host's own services hold, so a compose file asking for one is refused when
// its spec is built (issue 13 item 5) instead of CreateVm failing and backing off for ever: the
// VMM's own port, the KMS CVM's host port and, when init set them up, auth-simple and the key
// provider. Read from supervisor.toml and init.json, never probed: the answer is the same on
// every pass and in `hash`.
import type { ReservedPort } from '../app/host-ports.ts';
import type { Config } from '../config.ts';
import { readInitJournal } from './journal.ts';
import type { InitJournal } from './journal.ts';

// Every port supervisor.toml and the init journal give a host service, each once.
export function reservedHostPorts(config: Config, journal: InitJournal): ReservedPort[] {
  const found: ReservedPort[] = [];
  const add = (port: number | undefined, owner: string): void => {
    if (port === undefined || !Number.isInteger(port) || port < 1 || port > 65535) return;
    if (!found.some((r) => r.port === port)) found.push({ protocol: 'tcp', port, owner });
  };
  add(vmmPortOf(config.vmm.url), "dstack-vmm's ([vmm] url)");
  for (const step of [journal.steps.render, journal.steps.kms]) {
    const port = step?.detail['kms_port'] ?? step?.detail['port'];
    if (typeof port === 'number') add(port, "the KMS's (init)");
  }
  const { init } = config;
  if (init.enabled && init.kms_port !== 0) add(init.kms_port, "the KMS's ([init] kms_port)");
  for (const url of config.apps.kms_urls) add(guestHostPortOf(url, init.guest_host_address), "the KMS's ([apps] kms_urls)");
  if (init.enabled) {
    add(init.auth_port, "auth-simple's (init, [init] auth_port)");
    add(init.key_provider_port, "the key provider's (init, [init] key_provider_port)");
  }
  return found;
}

// reservedHostPorts with `<state_dir>/init.json` read; throws InitError INIT_JOURNAL when it
// cannot be read or parsed.
export async function loadReservedHostPorts(config: Config): Promise<ReservedPort[]> {
  return reservedHostPorts(config, await readInitJournal(config.state_dir));
}

// `tcp:host:port` or `http(s)://host:port`; none for a unix socket.
function vmmPortOf(url: string): number | undefined {
  const tcp = /^tcp:.*:(\d+)$/.exec(url);
  if (tcp) return Number(tcp[1]);
  return /^https?:\/\//.test(url) ? urlPortOf(url) : undefined;
}

// The port of a KMS URL that guests reach on this host (`https://10.0.2.2:9201`); none for a
// KMS elsewhere, whose port is not this host's.
function guestHostPortOf(url: string, guestHost: string): number | undefined {
  return URL.canParse(url) && new URL(url).hostname === guestHost ? urlPortOf(url) : undefined;
}

// The URL's port, or its scheme's default.
function urlPortOf(url: string): number | undefined {
  if (!URL.canParse(url)) return undefined;
  const parsed = new URL(url);
  return parsed.port !== '' ? Number(parsed.port) : parsed.protocol === 'https:' ? 443 : 80;
}
