// Compose file → everything needed to deploy it: the manifest (and so the compose hash), the VM's
// size and image, its host ports, and the warnings the operator should see. Pure: no I/O, so the
// reconciler, the `hash` command and the tests all get the same answer for the same text.
import type { Config } from '../config.ts';
import type { PortMapping } from '../vmm/messages.ts';
import { deriveComposePorts } from './compose-ports.ts';
import { composeHashOf, renderManifest } from './manifest.ts';
import { checkAppName } from './name.ts';
import { parseOverrides } from './overrides.ts';
import { parseCompose } from './parse.ts';
import { checkPortMappings } from './port-rules.ts';
import { validateCompose } from './schema.ts';
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

// One compose file to turn into a spec.
export type AppSpecInput = {
  name: string;
  file: string;
  text: string;
  // names from NAME.env; they become the manifest's allowed_envs
  envKeys?: readonly string[];
  defaults: AppDefaults;
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
  gateway: boolean;
  publicLogs: boolean;
  publicSysinfo: boolean;
  allowedEnvs: string[];
  warnings: AppWarning[];
};

// Build the spec; throws AppError (APP_NAME, APP_ENCODING, APP_EMPTY, APP_YAML, APP_SCHEMA,
// APP_XDSTACK_KEY, APP_XDSTACK_VALUE, APP_PORTS) naming the file, line and fix.
export function buildAppSpec(input: AppSpecInput): AppSpec {
  const { name, file, text, defaults } = input;
  checkAppName(file, name);
  const parsed = parseCompose(file, text);
  const compose = validateCompose(parsed, parsed.data);
  const overrides = parseOverrides(parsed, compose['x-dstack']);
  const derived = deriveComposePorts(parsed, compose.services, defaults.portAddress);
  const declared = overrides.ports ? parseXdstackPorts(parsed, overrides.ports, defaults.portAddress) : derived.declared;
  const ports = checkPortMappings(parsed, declared);
  const allowedEnvs = [...new Set(input.envKeys ?? [])].sort();
  const settings = {
    kms: overrides.kms ?? true,
    gateway: overrides.gateway ?? false,
    publicLogs: overrides.public_logs ?? true,
    publicSysinfo: overrides.public_sysinfo ?? true,
  };
  const manifest = renderManifest({ name, composeText: text, allowedEnvs, ...settings });
  return {
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
    allowedEnvs,
    warnings: derived.warnings,
  };
}
