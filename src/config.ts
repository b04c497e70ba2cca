import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import * as z from 'zod';
import { SupervisorError } from './errors.ts';
import { InitSectionSchema } from './init/config-schema.ts';
import { cleartextTokenHost } from './vmm/cleartext.ts';
import { DEFAULT_PRIVILEGED_PORTS, FIRST_UNPRIVILEGED_PORT } from './app/host-ports.ts';
import { canonicalPciAddress } from './app/gpus.ts';
import { NVIDIA_KINDS } from './init/gpu-probe.ts';
import { cvmSize, describeIssues, formatKey, parseTomlText } from './toml-config.ts';

// Where the service looks when neither --config nor DSTACK_SUPERVISOR_CONFIG names a file.
export const DEFAULT_CONFIG_PATH = '/etc/dstack/supervisor.toml';

// The environment variable that names supervisor.toml (same meaning as --config).
export const CONFIG_ENV = 'DSTACK_SUPERVISOR_CONFIG';

const path = z.string().min(1, 'must not be empty');
const seconds = z.number().int().positive();

// `[vmm]`: how to reach dstack-vmm.
const VmmSectionSchema = z
  .object({
    url: z
      .string()
      .regex(/^(unix:\/|tcp:|https?:\/\/)/, 'must be "unix:/path", "tcp:host:port" or "http(s)://host:port"')
      .default('unix:/var/run/dstack/vmm.sock'),
    // The bearer token file; when the file does not exist the client sends no token.
    token_file: z.string().default('/etc/dstack/vmm-auth-token'),
    mode: z.enum(['protobuf', 'json']).default('protobuf'),
    timeout_ms: z.number().int().positive().default(30_000),
    // true: the operator accepts that the token crosses the network unencrypted (plain http:// or
    // tcp: to a host that is not loopback); refused otherwise, below.
    allow_cleartext_token: z.boolean().default(false),
  })
  .strict()
  .superRefine((v, ctx) => {
    const host = v.token_file === '' || v.allow_cleartext_token ? null : cleartextTokenHost(v.url);
    if (host === null) return;
    ctx.addIssue({
      code: 'custom',
      path: ['url'],
      message:
        `would send the token of ${v.token_file} in clear text to ${host}, which is not a loopback address; ` +
        'use https://, a unix: socket or a loopback address, or set [vmm] allow_cleartext_token = true if the network to it is trusted ' +
        '(token_file = "" sends no token)',
    });
  });

// `[auth]`: the auth-simple allowlist the supervisor edits.
const AuthSectionSchema = z
  .object({
    config_path: path.default('/etc/dstack/auth-config.json'),
  })
  .strict();

// `[apps]`: defaults for every app CVM and the timings of docs/apps-dir.md.
const AppsSectionSchema = z
  .object({
    // Empty: the guest image that init installed (the VMM's newest image).
    image: z.string().default(''),
    vcpu: cvmSize('vcpu').default(2),
    // MB
    memory: cvmSize('memory').default(2048),
    // GB
    disk: cvmSize('disk').default(20),
    port_address: z.union([z.ipv4(), z.ipv6()], { error: 'must be an IPv4 or IPv6 address' }).default('127.0.0.1'),
    // Host ports below 1024 apps may publish (e.g. [80, 443]); the others are the host's own.
    privileged_ports: z.array(z.number().int().min(1).max(FIRST_UNPRIVILEGED_PORT - 1, `must be below ${FIRST_UNPRIVILEGED_PORT} (higher ports need no entry)`)).default([...DEFAULT_PRIVILEGED_PORTS]),
    settle_ms: z.number().int().nonnegative().default(1000),
    // Fractions are allowed so tests can run the loop fast; operators use whole seconds.
    resync_s: z.number().positive().default(60),
    delete_confirm_s: z.number().nonnegative().default(5),
    concurrency: z.number().int().positive().default(4),
    owner: z.number().int().nonnegative().default(0),
    max_file_bytes: z.number().int().positive().default(1024 * 1024),
    kms_urls: z.array(z.url()).default([]),
    // The KMS's k256 public key (GetMeta k256_pubkey, SEC1 hex); env-encryption keys for NAME.env
    // must be signed by it. init fills it in; empty refuses apps that have a NAME.env.
    kms_public_key: z.string().regex(/^(0x)?([0-9a-fA-F]{66}|[0-9a-fA-F]{130})?$/, 'must be a SEC1 hex secp256k1 public key').default(''),
    backoff_initial_s: z.number().positive().default(5),
    backoff_max_s: z.number().positive().default(300),
    boot_timeout_s: seconds.default(600),
    shutdown_timeout_s: seconds.default(60),
    // How often a booting, stopping or removed VM is asked about while an app waits on it.
    poll_s: z.number().positive().max(60).default(0.5),
    // false: no inotify watcher; changes still land within resync_s + settle_ms (rule 9).
    watch: z.boolean().default(true),
  })
  .strict()
  .refine((a) => a.backoff_max_s >= a.backoff_initial_s, {
    path: ['backoff_max_s'],
    message: 'must be at least backoff_initial_s',
  });

// A DNS server as node:dns setServers() takes it: an IPv4 or IPv6 address, with a port as
// `1.2.3.4:53` or `[::1]:53`.
function isDnsServer(value: string): boolean {
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(value);
  if (bracketed) return isIP(bracketed[1]!) === 6 && (bracketed[2] === undefined || Number(bracketed[2]) <= 65535);
  const withPort = /^([\d.]+):(\d{1,5})$/.exec(value);
  if (withPort) return isIP(withPort[1]!) === 4 && Number(withPort[2]) <= 65535;
  return isIP(value) !== 0;
}

// `[gateway]`: how the supervisor looks at Tier 2 from the host (gateway.d holds what it deploys).
const GatewaySectionSchema = z
  .object({
    // The resolvers asked whether `*.<domain>` points at this host; empty = the host's own
    // (/etc/resolv.conf). A public resolver here sees what the world sees, past split-horizon DNS.
    dns_servers: z
      .array(z.string().refine(isDnsServer, 'must be an IP address, optionally with a port ("1.1.1.1", "1.1.1.1:53", "[2606:4700:4700::1111]:53")'))
      .default([]),
  })
  .strict();

// One fake NVIDIA GPU of the simulated host: its PCI address, product id (10de:2335 is an H200),
// the driver it is bound to (only vfio-pci ones can be given to a CVM) and whether it is a GPU or
// an NVSwitch (10de:22a3 on H100/H200 boards), which dstack-vmm's attach mode "all" takes too.
const SimGpuSchema = z
  .object({
    slot: z.string().refine((s) => canonicalPciAddress(s) !== undefined, 'must be a PCI address like "0000:18:00.0"'),
    product_id: z.string().regex(/^10de:[0-9a-f]{4}$/, 'must be an NVIDIA product id like "10de:2335"'),
    driver: z.string().default('vfio-pci'),
    kind: z.enum(NVIDIA_KINDS).default('gpu'),
  })
  .strict();

// `[sim]`: the simulated host. Chosen only by this explicit key, never by accident.
const SimSectionSchema = z
  .object({
    enabled: z.boolean().default(false),
    dir: path.default('/var/lib/dstack/supervisor/sim'),
    // Its GPUs: in the fake sysfs init's preflight reads, and what its dstack-vmm can attach.
    gpus: z
      .array(SimGpuSchema)
      .default([])
      .refine((gpus) => new Set(gpus.map((g) => canonicalPciAddress(g.slot))).size === gpus.length, 'names a PCI address twice'),
  })
  .strict();

const SECTIONS = {
  vmm: VmmSectionSchema,
  auth: AuthSectionSchema,
  init: InitSectionSchema,
  apps: AppsSectionSchema,
  gateway: GatewaySectionSchema,
  sim: SimSectionSchema,
} as const;

// The whole of supervisor.toml; `ConfigSchema.parse({})` is the all-defaults config.
export const ConfigSchema = z
  .object({
    apps_dir: path.default('/etc/dstack/apps.d'),
    gateway_dir: path.default('/etc/dstack/gateway.d'),
    state_dir: path.default('/var/lib/dstack/supervisor'),
    vmm: SECTIONS.vmm.prefault({}),
    auth: SECTIONS.auth.prefault({}),
    init: SECTIONS.init.prefault({}),
    apps: SECTIONS.apps.prefault({}),
    gateway: SECTIONS.gateway.prefault({}),
    sim: SECTIONS.sim.prefault({}),
  })
  .strict();

// The validated configuration; keys keep the snake_case names of the TOML file.
export type Config = z.infer<typeof ConfigSchema>;

// supervisor.toml is missing, unreadable, not TOML, or has a bad key; the message names all three.
export class ConfigError extends SupervisorError {
  readonly file: string;
  readonly problems: readonly string[];
  constructor(code: 'CONFIG_INVALID' | 'CONFIG_UNREADABLE', file: string, problems: string[], cause?: unknown) {
    super(code, `${file}: ${problems.join('; ')}`, { cause });
    this.name = 'ConfigError';
    this.file = file;
    this.problems = problems;
  }
}

const SECTION_NAMES: ReadonlySet<string> = new Set(Object.keys(SECTIONS));
const UNKNOWN_KEY_FIX = 'remove it (every valid key is in the shipped supervisor.toml)';

// The keys whose values differ between two configurations, named as in the file (`[apps]
// resync_s`); a list is one key. SIGHUP reports them: none is applied before a restart (issue 15).
export function changedConfigKeys(before: Config, after: Config): string[] {
  const changed: string[] = [];
  const walk = (a: unknown, b: unknown, path: string[]): void => {
    if (isTable(a) && isTable(b)) {
      for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) walk(a[key], b[key], [...path, key]);
    } else if (JSON.stringify(a) !== JSON.stringify(b)) {
      changed.push(formatKey(path, SECTION_NAMES));
    }
  };
  walk(before, after, []);
  return changed;
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// Validate the text of supervisor.toml; `file` is only used to name it in errors.
export function parseConfig(text: string, file: string): Config {
  const parsed = parseTomlText(text);
  if (!parsed.ok) throw new ConfigError('CONFIG_INVALID', `${file}:${parsed.line}:${parsed.column}`, [parsed.problem], parsed.cause);
  const result = ConfigSchema.safeParse(parsed.value);
  if (!result.success) {
    throw new ConfigError('CONFIG_INVALID', file, describeIssues(result.error.issues, SECTION_NAMES, UNKNOWN_KEY_FIX));
  }
  return result.data;
}

// Where loadConfig looks besides its `file` argument; tests replace both.
export type ConfigSources = { env?: NodeJS.ProcessEnv; defaultPath?: string };

// Where the configuration came from: the file read, or, with `found` false, the default path
// that does not exist, so every key has its default (`status` says which, issue 15).
export type ConfigSource = { path: string; found: boolean };

// Read and validate supervisor.toml. Only a missing file at the default path means "all defaults";
// a file named by the caller or by DSTACK_SUPERVISOR_CONFIG must exist.
export async function loadConfig(file?: string, sources: ConfigSources = {}): Promise<Config> {
  return (await loadConfigWithSource(file, sources)).config;
}

// loadConfig, also saying which file it read.
export async function loadConfigWithSource(file?: string, sources: ConfigSources = {}): Promise<{ config: Config; source: ConfigSource }> {
  const env = sources.env ?? process.env;
  const explicit = file ?? (env[CONFIG_ENV] || undefined);
  const target = explicit ?? sources.defaultPath ?? DEFAULT_CONFIG_PATH;
  let text: string;
  try {
    text = await readFile(target, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && explicit === undefined) return { config: ConfigSchema.parse({}), source: { path: target, found: false } };
    const why = code === 'ENOENT' ? 'no such file; create it or point --config at the right file' : `cannot read it (${code ?? String(err)})`;
    throw new ConfigError('CONFIG_UNREADABLE', target, [why], err);
  }
  return { config: parseConfig(text, target), source: { path: target, found: true } };
}
