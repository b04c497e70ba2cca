// Compose file → everything needed to deploy it: the manifest (and so the compose hash), the VM's
// size and image, its host ports, and the warnings the operator should see. Pure: no I/O, so the
// reconciler, the `hash` command and the tests all get the same answer for the same text.
import type { Config } from '../config.ts';
import type { PortMapping } from '../vmm/messages.ts';
import { checkCompatibility } from './compat.ts';
import type { Finding } from './compat.ts';
import { composeGpuWarnings, findComposeGpuAsks } from './compose-gpus.ts';
import { deriveComposePorts } from './compose-ports.ts';
import { AppError } from './errors.ts';
import type { GpuRequest } from './gpus.ts';
import { DEFAULT_HOST_PORT_POLICY } from './host-ports.ts';
import type { HostPortPolicy, ReservedPort } from './host-ports.ts';
import { composeHashOf, renderEarlierManifest, renderManifest } from './manifest.ts';
import type { ManifestForm } from './manifest.ts';
import { checkAppName } from './name.ts';
import { parseOverrides } from './overrides.ts';
import { parseCompose } from './parse.ts';
import { checkPortMappings } from './port-rules.ts';
import { validateCompose } from './schema.ts';
import type { Source } from './source.ts';
import type { AppWarning } from './warning.ts';
import { parseXdstackPorts } from './xdstack-ports.ts';

// Values an app gets unless its `x-dstack:` says otherwise (supervisor.toml `[apps]`).
export type AppDefaults = {
  image: string;
  vcpu: number;
  // MB
  memory: number;
  // GB
  disk: number;
  // host address of derived port mappings without an IP prefix
  portAddress: string;
};

// The defaults supervisor.toml's `[apps]` section sets.
export function appDefaultsOf(apps: Config['apps']): AppDefaults {
  return { image: apps.image, vcpu: apps.vcpu, memory: apps.memory, disk: apps.disk, portAddress: apps.port_address };
}

// The host ports apps may not publish on this host: `[apps] privileged_ports` and the ports init
// gave the host's own services (src/init/reserved-ports.ts finds those).
export function hostPortPolicyOf(apps: Config['apps'], reserved: readonly ReservedPort[]): HostPortPolicy {
  return { privileged: apps.privileged_ports, reserved };
}

// Tier 2 as the host has it: absent when gateway.d has no gateway.toml; `apps` is its
// `apps` key; `serving` once the gateway CVM runs with its certificate, so apps can switch to it.
export type Tier2 = { apps: 'opt-in' | 'all'; serving: boolean };

// One compose file to turn into a spec.
export type AppSpecInput = {
  name: string;
  file: string;
  text: string;
  // names from NAME.env; they become the manifest's allowed_envs
  envKeys?: readonly string[];
  defaults: AppDefaults;
  // absent: supervisor.toml's default, with no port reserved
  hostPorts?: HostPortPolicy;
  tier2?: Tier2;
};

// A deployable app. `manifest` is the exact string to send as compose_file; `composeHash` is its sha256.
export type AppSpec = {
  name: string;
  file: string;
  manifest: string;
  composeHash: string;
  ports: PortMapping[];
  image: string;
  vcpu: number;
  memory: number;
  disk: number;
  kms: boolean;
  // gateway_enabled in the manifest: the app asks for the gateway and the gateway serves.
  gateway: boolean;
  // The app asks for the gateway (x-dstack.gateway, or gateway.toml `apps = "all"`), served or not.
  gatewayWanted: boolean;
  publicLogs: boolean;
  publicSysinfo: boolean;
  allowedEnvs: string[];
  // x-dstack.gpus: the GPUs the CVM asks for; absent, none (which GPUs it gets is decided across
  // apps, src/controller/gpu-claims.ts).
  gpus?: GpuRequest;
  warnings: AppWarning[];
  // The same content as releases before issue 16 serialised it, when that differs (no env names):
  // a VM running it needs no upgrade until the content changes (handlers/plan.ts inRunningForm).
  earlierForm?: ManifestForm;
};

// A spec together with the refusals of the compatibility pass, before deciding to deploy.
export type AppReview = { spec: AppSpec; refusal: AppError | undefined };

// Build the spec; throws AppError (APP_NAME, APP_ENCODING, APP_EMPTY, APP_YAML, APP_SCHEMA,
// APP_XDSTACK_KEY, APP_XDSTACK_VALUE, APP_PORTS, APP_REFUSED) naming the file, line and fix.
export function buildAppSpec(input: AppSpecInput): AppSpec {
  const { spec, refusal } = reviewAppSpec(input);
  if (refusal) throw refusal;
  return spec;
}

// Run every check and report refusals (APP_REFUSED) without throwing them, so a caller can show
// the whole picture of a file that cannot deploy; other AppErrors still throw.
export function reviewAppSpec(input: AppSpecInput): AppReview {
  const { name, file, text, defaults } = input;
  checkAppName(file, name);
  const parsed = parseCompose(file, text);
  const compose = validateCompose(parsed, parsed.data);
  const overrides = parseOverrides(parsed, compose['x-dstack']);
  const allowedEnvs = [...new Set(input.envKeys ?? [])].sort();
  const compat = checkCompatibility(compose, { app: name, envKeys: new Set(allowedEnvs) });
  const derived = deriveComposePorts(parsed, compose.services, defaults.portAddress);
  const declared = overrides.ports ? parseXdstackPorts(parsed, overrides.ports, defaults.portAddress) : derived.declared;
  const ports = checkPortMappings(parsed, declared, input.hostPorts ?? DEFAULT_HOST_PORT_POLICY);
  const gatewayWanted = overrides.gateway ?? input.tier2?.apps === 'all';
  const settings = {
    kms: overrides.kms ?? true,
    // A guest told to use a gateway that does not serve fails its boot or reports a boot error
    // (docs/dstack.md, Gateway): the app runs on its direct ports until the gateway is up, then
    // is upgraded in place.
    gateway: gatewayWanted && input.tier2?.serving === true,
    publicLogs: overrides.public_logs ?? true,
    publicSysinfo: overrides.public_sysinfo ?? true,
  };
  const manifestInput = { name, composeText: text, allowedEnvs, ...settings };
  const manifest = renderManifest(manifestInput);
  const earlier = renderEarlierManifest(manifestInput);
  const unserved = overrides.gateway === true && !settings.gateway ? [gatewayWarning(input.tier2)] : [];
  const gpuWarnings = composeGpuWarnings(findComposeGpuAsks(compose.services), overrides.gpus);
  const warnings = sortFindings([...compat.warnings.map(withoutPath), ...derived.warnings, ...unserved, ...gpuWarnings]);
  const spec: AppSpec = {
    name,
    file,
    manifest,
    composeHash: composeHashOf(manifest),
    ports,
    image: overrides.image ?? defaults.image,
    vcpu: overrides.vcpu ?? defaults.vcpu,
    memory: overrides.memory ?? defaults.memory,
    disk: overrides.disk ?? defaults.disk,
    ...settings,
    gatewayWanted,
    allowedEnvs,
    ...(overrides.gpus === undefined ? {} : { gpus: overrides.gpus }),
    warnings,
    ...(earlier === undefined ? {} : { earlierForm: { manifest: earlier, composeHash: composeHashOf(earlier) } }),
  };
  return { spec, refusal: compat.refusals.length > 0 ? refusalError(parsed, compat.refusals, warnings) : undefined };
}

// Why an app that asks for the gateway runs on its direct ports for now.
function gatewayWarning(tier2: Tier2 | undefined): AppWarning {
  const message = tier2
    ? 'the gateway is not serving yet; the app runs on its direct ports and is upgraded to the gateway once it is'
    : 'no gateway is configured (gateway.d/gateway.toml); the app runs on its direct ports, and is upgraded to the gateway once one is configured and serving';
  return { service: '', key: 'x-dstack.gateway', message };
}

// One error for all refusals, positioned at the first; the lists ride along for status output.
function refusalError(source: Source, refusals: readonly Finding[], warnings: readonly AppWarning[]): AppError {
  const [first] = refusals;
  const lines = refusals.map((r) => `${r.service ? `service ${r.service}: ` : ''}${r.key}: ${r.message}`);
  const problem = `cannot run in a CVM as written: ${lines.join('; ')}`;
  return new AppError('APP_REFUSED', source.file, problem, first && source.locate(first.path), {
    refusals: sortFindings(refusals.map(withoutPath)),
    warnings,
  });
}

function withoutPath({ service, key, message }: Finding): AppWarning {
  return { service, key, message };
}

// File-level first, then by service and key (code-unit order, not locale: the same on every host);
// stable, so equal files list findings identically.
function sortFindings(findings: AppWarning[]): AppWarning[] {
  const order = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return findings.sort((a, b) => order(a.service, b.service) || order(a.key, b.key));
}
