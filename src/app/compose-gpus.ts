// GPUs asked for the compose way (issue 19): docker's device requests (`deploy.resources.
// reservations.devices` with driver nvidia or capability gpu), the compose-spec `gpus:` key and
// the older `runtime: nvidia`. Inside the CVM these pick among the GPUs the CVM has, and a CVM has
// one only when `x-dstack.gpus` says so; without it the container fails at start (libcuda.so.1
// not found, .agent/GPU_TEE_DEPLOYMENT.md upstream). The other way round, GPUs given to a CVM
// whose services ask docker for none are seen by no container.
import type { Compose } from './schema.ts';
import type { GpuRequest } from './gpus.ts';
import type { AppWarning } from './warning.ts';

// One service's ask: under which key (the first of devices, `gpus:`, `runtime:` it uses), and
// how many GPUs it names (undefined: all, or unknown).
export type ComposeGpuAsk = { service: string; key: string; count: number | undefined };

const DEVICES_KEY = 'deploy.resources.reservations.devices';

// Every active service's GPU ask, in file order. Services in a profile do not start in the CVM.
export function findComposeGpuAsks(services: Compose['services']): ComposeGpuAsk[] {
  const asks: ComposeGpuAsk[] = [];
  for (const [service, spec] of Object.entries(services)) {
    if (spec.profiles && spec.profiles.length > 0) continue;
    const devices = asList(field(field(field(spec['deploy'], 'resources'), 'reservations'), 'devices')).filter(isGpuDevice);
    const gpus = spec['gpus'];
    const ways: ComposeGpuAsk[] = [
      ...(devices.length > 0 ? [{ service, key: DEVICES_KEY, count: totalCount(devices) }] : []),
      ...(gpus !== undefined && gpus !== null ? [{ service, key: 'gpus', count: gpus === 'all' ? undefined : totalCount(asList(gpus)) }] : []),
      ...(spec['runtime'] === 'nvidia' ? [{ service, key: 'runtime', count: undefined }] : []),
    ];
    const [first] = ways;
    if (first) asks.push({ ...first, count: ways.find((w) => w.count !== undefined)?.count });
  }
  return asks;
}

// The warnings of a file whose GPU asks and `x-dstack.gpus` disagree.
export function composeGpuWarnings(asks: readonly ComposeGpuAsk[], request: GpuRequest | undefined): AppWarning[] {
  if (request !== undefined) {
    if (asks.length > 0) return [];
    return [
      {
        service: '',
        key: 'x-dstack.gpus',
        message:
          'gives the CVM GPUs, but no service asks docker for one, so no container sees them; add `deploy: {resources: {reservations: ' +
          '{devices: [{driver: nvidia, count: all, capabilities: [gpu]}]}}}` to the services that use them',
      },
    ];
  }
  // The number to suggest: the largest a service names; 1 where each takes "all" (the CVM's all).
  const suggested = Math.max(1, ...asks.map((a) => a.count ?? 1));
  return asks.map(({ service, key }) => ({
    service,
    key,
    message:
      `asks docker for an NVIDIA GPU, but the CVM has none unless the file says how many: add \`x-dstack: {gpus: ${suggested}}\` ` +
      '(a number of free GPUs, `all`, or a list of PCI addresses); without it the container fails to start',
  }));
}

// A device request docker hands to the NVIDIA runtime. `driver` may be interpolated
// (`${OLLAMA_GPU_DRIVER-nvidia}`), so the name is looked for inside it; `capabilities: [gpu]` is
// what docker itself matches GPU drivers on.
function isGpuDevice(entry: unknown): boolean {
  const driver = field(entry, 'driver');
  if (typeof driver === 'string' && /nvidia/i.test(driver)) return true;
  return asList(field(entry, 'capabilities')).some((c) => c === 'gpu');
}

// The GPUs a list of requests names: counts and `device_ids` add up; `count: all`, no count or an
// interpolated one make it unknown.
function totalCount(entries: readonly unknown[]): number | undefined {
  let total = 0;
  for (const entry of entries) {
    const ids = field(entry, 'device_ids');
    const count = Array.isArray(ids) ? ids.length : field(entry, 'count');
    const n = typeof count === 'number' ? count : typeof count === 'string' && /^\d+$/.test(count) ? Number(count) : undefined;
    if (n === undefined) return undefined;
    total += n;
  }
  return total;
}

function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>)[key] : undefined;
}

function asList(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}
