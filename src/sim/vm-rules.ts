// The checks dstack-vmm applies to a VM configuration before it touches anything (facts §2,
// §2.1, §2.2; `create_manifest_from_vm_config`, `load_vm`, `update_vm` upstream). Error texts
// follow upstream's anyhow chains, so a caller matching on them sees the real wording.
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';

// The port-mapping section of vmm.toml: `[cvm.port_mapping]`.
export type PortMappingConfig = {
  enabled: boolean;
  address: string;
  range: { protocol: 'tcp' | 'udp'; from: number; to: number }[];
};

// One requested mapping, in the wire's snake_case shape.
export type PortRequest = { protocol: string; host_port: number; vm_port: number; host_address: string };

// A mapping after validation: protocol checked, host address filled in.
export type HostPort = { protocol: 'tcp' | 'udp'; host_port: number; vm_port: number; host_address: string };

// A VM holding ports, as the conflict check sees it.
export type PortHolder = { id: string; name: string; ports: HostPort[] };

// A VMM error: the text is what goes into the 400 body.
export class VmmError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VmmError';
  }
}

// Hex sha256 of the exact string: the compose hash (no YAML/JSON normalisation, facts §2.4).
export function hashCompose(composeFile: string): string {
  return createHash('sha256').update(composeFile, 'utf8').digest('hex');
}

// The default app id: the first 40 hex characters of the compose hash.
export function appIdOfCompose(composeFile: string): string {
  return hashCompose(composeFile).slice(0, 40);
}

// CreateVm's app id rule: a given id loses one `0x` and is lowercased; none means the default.
export function resolveAppId(appId: string | undefined, composeFile: string): string {
  if (appId === undefined) return appIdOfCompose(composeFile);
  return (appId.startsWith('0x') ? appId.slice(2) : appId).toLowerCase();
}

// Upstream's label rule: alphanumerics (Unicode, like Rust's is_alphanumeric) and `-_. @~!$^()`.
export function validateName(name: string): void {
  if (!/^[\p{L}\p{N}\-_. @~!$^()]*$/u.test(name)) throw new VmmError(`Invalid name: ${name}`);
}

// Image directory names: at most 64 characters, no `..`, only `[A-Za-z0-9_.-]`.
export function isValidImageName(image: string): boolean {
  return image.length <= 64 && !image.includes('..') && /^[A-Za-z0-9_.-]*$/.test(image);
}

// The app-compose fields a guest needs; the rest is opaque to the VMM, as upstream.
export type AppCompose = { manifest_version: number | string; name: string; runner: string; kms_enabled: boolean };

// Parse compose_file the way serde reads AppCompose: JSON object with manifest_version (number
// or integer string), name and runner; unknown keys ignored. Throws the serde-like detail.
export function parseAppCompose(composeFile: string): AppCompose {
  let value: unknown;
  try {
    value = JSON.parse(composeFile);
  } catch (err) {
    throw new VmmError(err instanceof Error ? err.message : String(err));
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new VmmError('invalid type: expected struct AppCompose');
  }
  const obj = value as Record<string, unknown>;
  for (const field of ['manifest_version', 'name', 'runner']) {
    if (!(field in obj)) throw new VmmError(`missing field \`${field}\``);
  }
  const version = obj['manifest_version'];
  const versionOk = typeof version === 'number' || (typeof version === 'string' && /^\d+$/.test(version));
  if (!versionOk) throw new VmmError('invalid manifest_version: expected a number or an integer string');
  if (typeof obj['name'] !== 'string') throw new VmmError('invalid type for `name`: expected a string');
  if (typeof obj['runner'] !== 'string') throw new VmmError('invalid type for `runner`: expected a string');
  const keyProvider = obj['key_provider'];
  const kmsEnabled = typeof keyProvider === 'string' ? keyProvider === 'kms' : obj['kms_enabled'] === true;
  return { manifest_version: version, name: obj['name'], runner: obj['runner'], kms_enabled: kmsEnabled };
}

// Validate compose_file with the context upstream puts in front of serde's message.
export function requireAppCompose(composeFile: string, context: string): AppCompose {
  try {
    return parseAppCompose(composeFile);
  } catch (err) {
    throw new VmmError(`${context}: ${(err as Error).message}`);
  }
}

// CreateVm's port rules: mapping enabled, each (protocol, host_port) inside the range, empty
// host_address → the configured address.
export function resolveCreatePorts(ports: PortRequest[], config: PortMappingConfig): HostPort[] {
  if (ports.length > 0 && !config.enabled) throw new VmmError('Port mapping is disabled');
  return ports.map((p) => {
    checkPortNumbers(p);
    const allowed = config.range.some((r) => r.protocol === p.protocol && p.host_port >= r.from && p.host_port <= r.to);
    if (!allowed) throw new VmmError(`Port mapping is not allowed for ${p.protocol}:${p.host_port}`);
    const address = p.host_address === '' ? config.address : p.host_address;
    return toHostPort(p, address);
  });
}

// UpdateVm's port rules: no enabled/range check, and an empty host_address is an error.
export function resolveUpdatePorts(ports: PortRequest[]): HostPort[] {
  return ports.map((p) => {
    checkPortNumbers(p);
    return toHostPort(p, p.host_address);
  });
}

// Refuse a mapping whose (protocol, host port) another VM — running, stopped or being removed —
// already holds on an overlapping address, and duplicates inside one request.
export function checkPortConflicts(ports: HostPort[], others: PortHolder[]): void {
  ports.forEach((port, i) => {
    const twin = ports.slice(0, i).find((p) => overlaps(p, port));
    if (twin) throw new VmmError(`Duplicate port mapping ${describePort(port)}`);
    for (const vm of others) {
      if (vm.ports.some((p) => overlaps(p, port))) {
        throw new VmmError(`Port ${describePort(port)} is already used by VM ${vm.name} (${vm.id})`);
      }
    }
  });
}

function describePort(p: HostPort): string {
  return `${p.protocol}:${p.host_address}:${p.host_port}`;
}

// Two binds clash on the same protocol and port when the addresses are equal or one is a wildcard.
function overlaps(a: HostPort, b: HostPort): boolean {
  if (a.protocol !== b.protocol || a.host_port !== b.host_port) return false;
  const wildcard = (addr: string): boolean => addr === '0.0.0.0' || addr === '::';
  return a.host_address === b.host_address || wildcard(a.host_address) || wildcard(b.host_address);
}

function checkPortNumbers(p: PortRequest): void {
  if (!Number.isInteger(p.host_port) || p.host_port < 0 || p.host_port > 65535) throw new VmmError('Invalid host port');
  if (!Number.isInteger(p.vm_port) || p.vm_port < 0 || p.vm_port > 65535) throw new VmmError('Invalid vm port');
}

function toHostPort(p: PortRequest, address: string): HostPort {
  if (p.protocol !== 'tcp' && p.protocol !== 'udp') throw new VmmError('Invalid protocol');
  if (isIP(address) === 0) throw new VmmError('Invalid host address');
  return { protocol: p.protocol, host_port: p.host_port, vm_port: p.vm_port, host_address: address };
}
