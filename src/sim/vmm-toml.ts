// The simulated VMM's vmm.toml: the keys it acts on (SimVmmSettings), read from the same file a
// real dstack-vmm would read, which on a host with `[init] enabled` is the one init renders. A key
// the file leaves out takes upstream's built-in value (dstack/vmm/vmm.toml at 312dc605), as the
// real VMM layers its built-in config under the file (docs/dstack.md §1.4).
import { readFile } from 'node:fs/promises';
import { parse as parseToml } from 'smol-toml';
import * as z from 'zod';
import { describeError } from '../errors.ts';
import type { SimVmmSettings } from './vmm-config.ts';
import { VmmRejection } from './vm-rules.ts';

const port = z.number().int().min(0).max(65535);
const range = z.object({ protocol: z.enum(['tcp', 'udp']), from: port, to: port });

// Only the keys the simulator uses; every other key is accepted and ignored, as serde does.
const VmmTomlSchema = z.object({
  kms_url: z.string().default('http://127.0.0.1:8081'),
  run_path: z.string().default('/var/lib/dstack/vm'),
  cvm: z
    .object({
      kms_urls: z.array(z.string()).default(['http://127.0.0.1:8081']),
      gateway_urls: z.array(z.string()).default(['http://127.0.0.1:8082']),
      cid_pool_size: z.number().int().min(0).default(1000),
      max_allocable_vcpu: z.number().int().min(0).default(20),
      max_allocable_memory_in_mb: z.number().int().min(0).default(100_000),
      networking: z.object({ mode: z.enum(['user', 'bridge', 'custom']).default('user'), bridge: z.string().default('') }).prefault({}),
      port_mapping: z
        .object({
          enabled: z.boolean().default(false),
          address: z.string().default('127.0.0.1'),
          range: z.array(range).default([{ protocol: 'tcp', from: 1, to: 20000 }]),
        })
        .prefault({}),
      gpu: z
        .object({
          enabled: z.boolean().default(false),
          listing: z.array(z.string()).default(['10de:2335']),
          exclude: z.array(z.string()).default([]),
          include: z.array(z.string()).default([]),
          allow_attach_all: z.boolean().default(true),
        })
        .prefault({}),
    })
    .prefault({}),
  gateway: z
    .object({ base_domain: z.string().default('localhost'), port: port.default(8082), agent_port: port.default(8090) })
    .prefault({}),
});

// Parse vmm.toml text; throws VmmRejection naming `path` and the key at fault.
export function parseVmmToml(text: string, path: string): SimVmmSettings {
  let doc: unknown;
  try {
    doc = parseToml(text);
  } catch (err) {
    throw new VmmRejection(`${path}: not valid TOML (${describeError(err)}); dstack-vmm would not start with it`);
  }
  const parsed = VmmTomlSchema.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = issue?.path.map(String).join('.') ?? '';
    throw new VmmRejection(`${path}: ${key === '' ? '' : `${key}: `}${issue?.message ?? 'invalid'}; dstack-vmm would not start with it`);
  }
  const { cvm, gateway } = parsed.data;
  return {
    kmsUrl: parsed.data.kms_url,
    runPath: parsed.data.run_path,
    kmsUrls: cvm.kms_urls,
    gatewayUrls: cvm.gateway_urls,
    cidPoolSize: cvm.cid_pool_size,
    maxAllocableVcpu: cvm.max_allocable_vcpu,
    maxAllocableMemoryMb: cvm.max_allocable_memory_in_mb,
    networking: { mode: cvm.networking.mode, bridge: cvm.networking.bridge },
    portMapping: cvm.port_mapping,
    gpu: { enabled: cvm.gpu.enabled, listing: cvm.gpu.listing, include: cvm.gpu.include, exclude: cvm.gpu.exclude, allowAttachAll: cvm.gpu.allow_attach_all },
    gateway: { baseDomain: gateway.base_domain, port: gateway.port, agentPort: gateway.agent_port },
  };
}

// Read `path`; undefined while it does not exist.
export async function readVmmToml(path: string): Promise<SimVmmSettings | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return parseVmmToml(text, path);
}

// When the simulated VMM reads its vmm.toml.
export type VmmTomlSource = {
  // The VMM starts (host start, the end of a simulated restart): read the file if it exists.
  load: () => Promise<void>;
  // Before each prpc call: read it if it has never existed yet.
  beforeCall: () => Promise<void>;
};

// A real dstack-vmm reads vmm.toml once, when systemd starts it, and init starts it (step 5)
// only after rendering the file (step 3). The simulated VMM lives in the supervisor's process and
// already listens when init begins, so until the file has existed it reads it again before every
// call: the first call after step 3 (init's own Version probe) sees what a real VMM starting then
// would. From then on the settings change only at a simulated restart, as on a real host.
export function followVmmToml(path: string, apply: (settings: SimVmmSettings) => void): VmmTomlSource {
  let loaded = false;
  const load = async (): Promise<void> => {
    const settings = await readVmmToml(path);
    if (settings === undefined) return;
    apply(settings);
    loaded = true;
  };
  return { load, beforeCall: () => (loaded ? Promise.resolve() : load()) };
}
