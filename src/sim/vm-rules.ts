// The checks dstack-vmm applies to a VM configuration before it touches anything (docs/dstack.md §2,
// §2.1, §2.2; `create_manifest_from_vm_config`, `load_vm`, `update_vm` upstream). Error texts
// follow upstream's anyhow chains, so a caller matching on them sees the real wording.
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { SupervisorError } from '../errors.ts';

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

// The simulated VMM refused a call; the message is exactly what goes into the 400 body.
export class VmmRejection extends SupervisorError {
  constructor(message: string) {
    super('SIM_VMM_REJECTED', message);
    this.name = 'VmmRejection';
  }
}

// Hex sha256 of the exact string: the compose hash (no YAML/JSON normalisation, docs/dstack.md §2.4).
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
  if (!/^[\p{L}\p{N}\-_. @~!$^()]*$/u.test(name)) throw new VmmRejection(`Invalid name: ${name}`);
}

// Image directory names: at most 64 characters, no `..`, only `[A-Za-z0-9_.-]`.
export function isValidImageName(image: string): boolean {
  return image.length <= 64 && !image.includes('..') && /^[A-Za-z0-9_.-]*$/.test(image);
}

// Where the guest gets its keys: `key_provider` wins over the kms/local flags (docs/dstack.md §3).
export type KeyProvider = 'none' | 'kms' | 'local' | 'tpm';

// The app-compose fields the simulated guest acts on; the rest is opaque, as upstream.
export type AppCompose = { name: string; runner: string; keyProvider: KeyProvider; gatewayEnabled: boolean; allowedEnvs: string[] };

// Parse compose_file the way serde reads AppCompose: a JSON object with manifest_version (number
// or integer string), name and runner; unknown keys ignored. Throws the serde-like detail.
export function parseAppCompose(composeFile: string): AppCompose {
  let value: unknown;
  try {
    value = JSON.parse(composeFile);
  } catch (err) {
    throw new VmmRejection((err as Error).message);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new VmmRejection('invalid type: expected struct AppCompose');
  }
  const obj = value as Record<string, unknown>;
  for (const field of ['manifest_version', 'name', 'runner']) {
    if (!(field in obj)) throw new VmmRejection(`missing field \`${field}\``);
  }
  const version = obj['manifest_version'];
  if (typeof version !== 'number' && !(typeof version === 'string' && /^\d+$/.test(version))) {
    throw new VmmRejection('invalid manifest_version: expected a number or an integer string');
  }
  const name = obj['name'];
  const runner = obj['runner'];
  if (typeof name !== 'string') throw new VmmRejection('invalid type for `name`: expected a string');
  if (typeof runner !== 'string') throw new VmmRejection('invalid type for `runner`: expected a string');
  return {
    name,
    runner,
    keyProvider: keyProviderOf(obj),
    gatewayEnabled: obj['gateway_enabled'] === true || obj['tproxy_enabled'] === true,
    allowedEnvs: Array.isArray(obj['allowed_envs']) ? obj['allowed_envs'].filter((e): e is string => typeof e === 'string') : [],
  };
}

function keyProviderOf(obj: Record<string, unknown>): KeyProvider {
  const explicit = obj['key_provider'];
  if (explicit === 'none' || explicit === 'kms' || explicit === 'local' || explicit === 'tpm') return explicit;
  if (obj['kms_enabled'] === true) return 'kms';
  return obj['local_key_provider_enabled'] === true ? 'local' : 'none';
}

// Validate compose_file with the context upstream puts in front of serde's message.
export function requireAppCompose(composeFile: string, context: string): AppCompose {
  try {
    return parseAppCompose(composeFile);
  } catch (err) {
    throw new VmmRejection(`${context}: ${(err as Error).message}`);
  }
}

// CreateVm's port rules: mapping enabled, each (protocol, host_port) inside the range, empty
// host_address → the configured address.
export function resolveCreatePorts(ports: PortRequest[], config: PortMappingConfig): HostPort[] {
  if (ports.length > 0 && !config.enabled) throw new VmmRejection('Port mapping is disabled');
  return ports.map((p) => {
    checkPortNumbers(p);
    const allowed = config.range.some((r) => r.protocol === p.protocol && p.host_port >= r.from && p.host_port <= r.to);
    if (!allowed) throw new VmmRejection(`Port mapping is not allowed for ${p.protocol}:${p.host_port}`);
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

// Refuse duplicates inside one request, then a mapping whose (protocol, host port) another VM —
// running, stopped or being removed — already holds on an overlapping address. Texts: upstream's
// `validate_unique_port_mappings` and `validate_port_mapping_conflicts` (main_service.rs).
export function checkPortConflicts(ports: HostPort[], others: readonly PortHolder[]): void {
  ports.forEach((port, i) => {
    if (ports.slice(0, i).some((p) => overlaps(p, port))) throw new VmmRejection(`duplicate host port mapping: ${describePort(port)}`);
  });
  for (const port of ports) {
    const holder = others.find((vm) => vm.ports.some((p) => overlaps(p, port)));
    if (holder) throw new VmmRejection(`host port mapping conflicts with VM ${holder.id}: ${describePort(port)}`);
  }
}

function describePort(p: HostPort): string {
  return `${p.protocol} ${p.host_address}:${p.host_port}`;
}

// Two binds clash on the same protocol and port when the addresses are equal or one is a wildcard.
function overlaps(a: HostPort, b: HostPort): boolean {
  if (a.protocol !== b.protocol || a.host_port !== b.host_port) return false;
  const wildcard = (addr: string): boolean => addr === '0.0.0.0' || addr === '::';
  return a.host_address === b.host_address || wildcard(a.host_address) || wildcard(b.host_address);
}

function checkPortNumbers(p: PortRequest): void {
  if (!Number.isInteger(p.host_port) || p.host_port < 0 || p.host_port > 65535) throw new VmmRejection('Invalid host port');
  if (!Number.isInteger(p.vm_port) || p.vm_port < 0 || p.vm_port > 65535) throw new VmmRejection('Invalid vm port');
}

function toHostPort(p: PortRequest, address: string): HostPort {
  if (p.protocol !== 'tcp' && p.protocol !== 'udp') throw new VmmRejection('Invalid protocol');
  if (isIP(address) === 0) throw new VmmRejection('Invalid host address');
  return { protocol: p.protocol, host_port: p.host_port, vm_port: p.vm_port, host_address: address };
}

// Upstream's `validate_vm_id` (app.rs), run before any VM id becomes a path: 1–64 of [A-Za-z0-9_-].
export function validateVmId(id: string): void {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) throw new VmmRejection('invalid VM id');
}

// What a ResizeVm request may change.
export type ResizeRequest = { vcpu?: number | undefined; memory?: number | undefined; disk_size?: number | undefined; image?: string | undefined };

// Upstream's `validate_resize_request` (main_service.rs, ResizeVm only): something to change, and
// no zero or empty value.
export function checkResizeRequest(request: ResizeRequest): void {
  const { vcpu, memory, disk_size: diskSize, image } = request;
  if (vcpu === undefined && memory === undefined && diskSize === undefined && image === undefined) {
    throw new VmmRejection('resize request contains no updates');
  }
  if (vcpu === 0) throw new VmmRejection('vcpu must be greater than zero');
  if (memory === 0) throw new VmmRejection('memory must be greater than zero');
  if (diskSize === 0) throw new VmmRejection('disk_size must be greater than zero');
  if (image === '') throw new VmmRejection('image must not be empty');
}

// Upstream's `apply_resource_updates` (UpdateVm and ResizeVm): a resize needs a stopped or exited
// VM, and disks only grow.
export function checkResizable(status: string, vmId: string, diskSize: number, request: ResizeRequest): void {
  if ([request.vcpu, request.memory, request.disk_size, request.image].every((v) => v === undefined)) return;
  if (status !== 'stopped' && status !== 'exited') throw new VmmRejection(`vm should be stopped before resize: ${vmId}`);
  if (request.disk_size !== undefined && request.disk_size < diskSize) throw new VmmRejection('Cannot shrink disk size');
}

// Write a resize into a VM's configuration.
export function applyResize(config: { vcpu: number; memory: number; disk_size: number; image: string }, request: ResizeRequest): void {
  if (request.vcpu !== undefined) config.vcpu = request.vcpu;
  if (request.memory !== undefined) config.memory = request.memory;
  if (request.disk_size !== undefined) config.disk_size = request.disk_size;
  if (request.image !== undefined) config.image = request.image;
}

// What fails first when UpdateVm/UpgradeApp or ResizeVm names a VM the VMM does not have: upstream
// reaches a file of the VM's work directory (`<run_path>/<id>/`) that is not there: the compose
// (checked by update_vm itself), encrypted_env, user_config, else the manifest. The prefixes are
// upstream's anyhow contexts (main_service.rs `update_vm`, `resize_vm`, workdir.rs `manifest`); the
// tail is fs-err's (3.3, the version dstack's Cargo.lock pins) for a missing file.
export function unknownVmError(
  request: { id: string; resize: true } | { id: string; compose_file: string; encrypted_env: string; user_config: string },
  runPath: string,
): VmmRejection {
  const dir = `${runPath}/${request.id}`;
  const missing = (what: string, path: string): string => `failed to ${what} file \`${dir}/${path}\`: No such file or directory (os error 2)`;
  const manifest = `failed to read manifest: ${missing('open', 'vm-manifest.json')}`;
  if ('resize' in request) return new VmmRejection(`failed to read manifest: ${manifest}`);
  if (request.compose_file !== '') return new VmmRejection(`The instance ${request.id} not found`);
  if (request.encrypted_env !== '') return new VmmRejection(`Failed to write encrypted env: ${missing('create', 'shared/.encrypted-env')}`);
  if (request.user_config !== '') return new VmmRejection(`Failed to write user config: ${missing('create', 'shared/.user-config')}`);
  return new VmmRejection(`Failed to read manifest: ${manifest}`);
}
