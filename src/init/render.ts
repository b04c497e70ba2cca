// Init step 3: render vmm.toml, kms.toml, auth-config.json and the unit env files from
// templates/ and supervisor.toml. Operator edits survive (merge.ts), keys the supervisor derives
// are enforced with a warning, and a file whose content would not change is not touched, so a
// re-run on a healthy host writes nothing.
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { acquireLock, lockPathFor } from '../auth/lock.ts';
import type { InitSection } from './config-schema.ts';
import { renderError } from './errors.ts';
import { readFileIfExists, writeIfChanged } from './files.ts';
import { checkKmsHostAddress, pickKmsPort, type PortProbe } from './kms-port.ts';
import { kmsHostAddresses } from './kms-compose.ts';
import { canonical, getPath, isTable, mergeOperatorEdits, type Doc, type EnforcedKey } from './merge.ts';
import { authConfigEnforced, kmsEnforced, kmsPlatformDefaults, vmmEnforced, vmmListenAddress } from './derived-keys.ts';
import { gpuTableOf, planGpuTable, withGpuTable, withoutGpuTable } from './gpu-config.ts';
import type { NvidiaDevice } from './gpu-probe.ts';
import type { Platform } from './platform.ts';

// Everything the render depends on. `vmmUrl` is supervisor.toml `[vmm] url` and
// `authConfigPath` its `[auth] config_path`, so the VMM listens where the client connects and
// auth-simple reads the file the allowlist code edits.
export type RenderInputs = {
  init: InitSection;
  vmmUrl: string;
  authConfigPath: string;
  osImagePin: string;
  // The platform init resolved (platform.ts): what vmm.toml and kms.toml say about it, and whether
  // the key provider's env file is rendered at all (SNP runs no key provider).
  platform: Platform;
  // The KMS port the init journal recorded; without it, the port in the current vmm.toml's
  // `[cvm] kms_urls` is kept (so a lost journal never moves the KMS).
  previousKmsPort?: number;
  isPortFree?: PortProbe;
  templatesDir?: string;
  // The host's NVIDIA GPUs and NVSwitches (gpu-probe.ts), and the `[cvm.gpu]` init rendered last
  // (its journal; absent: the template's).
  gpus?: readonly NvidiaDevice[];
  previousGpuTable?: string;
};

// The KMS host port kms_urls name, the files written (empty on a healthy re-run), one warning per
// enforced key an operator had changed, what became of `[cvm.gpu]`, and the table init answers
// for now (undefined while that is the template's) for the journal.
export type RenderResult = { kmsPort: number; written: string[]; warnings: string[]; notes: string[]; gpuTable?: string };

// Where each rendered file lives.
export type ConfigPaths = { vmmToml: string; kmsToml: string; authConfig: string; authSimpleEnv: string; keyProviderEnv: string };

type Outcome = { path: string; written: boolean; warnings: string[] };

const TOML_HEADER = (template: string): string =>
  `# Rendered by \`dstack-supervisor init\` from templates/${template}.\n` +
  '# Keys derived from supervisor.toml [init] are re-enforced on every init, with a warning;\n' +
  '# every other key keeps your edit. Comments are lost only when init must rewrite the file.\n\n';

// The rendered files of `init`.
export function configPaths(init: InitSection, authConfigPath: string): ConfigPaths {
  return {
    vmmToml: join(init.config_dir, 'vmm.toml'),
    kmsToml: join(init.config_dir, 'kms.toml'),
    authConfig: authConfigPath,
    authSimpleEnv: join(init.config_dir, 'auth-simple.env'),
    keyProviderEnv: join(init.config_dir, 'key-provider.env'),
  };
}

// Render every host config file; see RenderResult.
export async function renderHostConfig(inputs: RenderInputs): Promise<RenderResult> {
  const { init } = inputs;
  const paths = configPaths(init, inputs.authConfigPath);
  const templates = inputs.templatesDir ?? findTemplatesDir();
  const listen = vmmListenAddress(inputs.vmmUrl);
  const existingVmm = await readToml(paths.vmmToml);
  const vmmPort = /^tcp:.*:(\d+)$/.exec(listen)?.[1];
  await checkKmsHostAddress(init.kms_host_address);
  const kmsPort = await pickKmsPort(
    {
      configured: init.kms_port,
      previous: inputs.previousKmsPort ?? previousKmsPort(existingVmm),
      ranges: init.port_ranges,
      reserved: [init.auth_port, init.key_provider_port, ...(vmmPort === undefined ? [] : [Number(vmmPort)])],
      addresses: kmsHostAddresses(init.kms_host_address),
    },
    inputs.isPortFree,
  );
  const vmmTemplate = await readTemplate(templates, 'vmm.toml');
  const templateGpu = canonical(getPath(vmmTemplate, ['cvm', 'gpu']) ?? {});
  const probed = gpuTableOf(inputs.gpus ?? []);
  const gpu = planGpuTable(existingVmm, probed, inputs.previousGpuTable ?? templateGpu);
  // The probed table fills in only where init renders it: an edited table gets no new keys.
  const vmmDefaults = probed && gpu.rendered === canonical(probed) ? withGpuTable(vmmTemplate, probed) : vmmTemplate;
  const vmmExisting = gpu.drop && existingVmm ? withoutGpuTable(existingVmm) : existingVmm;
  const outcomes: Outcome[] = [
    await renderToml(paths.vmmToml, 'vmm.toml', vmmDefaults, vmmExisting, vmmEnforced(init, listen, kmsPort, inputs.platform)),
    await renderToml(paths.kmsToml, 'kms.toml', withDefaults(await readTemplate(templates, 'kms.toml'), kmsPlatformDefaults(inputs.platform)), await readToml(paths.kmsToml), kmsEnforced(init, inputs.platform)),
    await renderAuthConfig(paths.authConfig, templates, inputs.osImagePin, init),
    await renderEnv(paths.authSimpleEnv, { PORT: String(init.auth_port), AUTH_CONFIG_PATH: paths.authConfig }),
  ];
  // No key provider runs on SNP: its env file is not rendered (one left from a TDX past stays,
  // unread, until destroy removes it).
  if (inputs.platform === 'tdx') {
    outcomes.push(
      await renderEnv(paths.keyProviderEnv, {
        KEY_PROVIDER_PORT: String(init.key_provider_port),
        KEY_PROVIDER_IMAGE: init.key_provider_image,
        // A bare $QCNL_MOUNT in the unit expands to no argument at all when this is empty.
        QCNL_MOUNT: init.qcnl_conf === '' ? '' : `--volume=${init.qcnl_conf}:/etc/sgx_default_qcnl.conf:ro`,
      }),
    );
  }
  return {
    kmsPort,
    written: outcomes.filter((o) => o.written).map((o) => o.path),
    warnings: outcomes.flatMap((o) => o.warnings),
    notes: gpu.note === undefined ? [] : [`${paths.vmmToml}: ${gpu.note}`],
    ...(gpu.rendered === templateGpu ? {} : { gpuTable: gpu.rendered }),
  };
}

// The templates/ directory: the first one found walking up from this module, which covers the
// source tree and a bundle installed beside its templates.
export function findTemplatesDir(from: string = fileURLToPath(import.meta.url)): string {
  for (let dir = dirname(from); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'templates', 'vmm.toml'))) return join(dir, 'templates');
    if (dirname(dir) === dir) throw renderError(join(dirname(from), 'templates'), 'templates/vmm.toml was not found beside the program; reinstall dstack-supervisor');
  }
}

// The KMS port a previous init rendered into `[cvm] kms_urls`, so re-runs keep it.
function previousKmsPort(vmm: Doc | undefined): number | undefined {
  const urls = vmm === undefined ? undefined : getPath(vmm, ['cvm', 'kms_urls']);
  const first: unknown = Array.isArray(urls) ? urls[0] : undefined;
  if (typeof first !== 'string') return undefined;
  const port = URL.canParse(first) ? Number(new URL(first).port) : 0;
  return port > 0 ? port : undefined;
}

// `template` with the tables of `extra` filled in where it has no such key.
function withDefaults(template: Doc, extra: Doc): Doc {
  return mergeOperatorEdits('template', extra, template, []).doc;
}

async function readTemplate(templates: string, template: string): Promise<Doc> {
  return parseToml(await readFile(join(templates, template), 'utf8'));
}

async function renderToml(path: string, template: string, defaults: Doc, existing: Doc | undefined, enforced: EnforcedKey[]): Promise<Outcome> {
  const merged = mergeOperatorEdits(path, defaults, existing, enforced);
  if (!merged.changed) return { path, written: false, warnings: merged.warnings };
  const written = await writeIfChanged(path, TOML_HEADER(template) + stringifyToml(merged.doc));
  return { path, written, warnings: merged.warnings };
}

// auth-config.json is also edited by the allowlist code while apps run: take its lock, and
// refuse (never repair) a file whose `apps` could be lost.
async function renderAuthConfig(path: string, templates: string, pin: string, init: InitSection): Promise<Outcome> {
  await mkdir(dirname(path), { recursive: true });
  const lock = await acquireLock(lockPathFor(path));
  try {
    const existing = parseJsonDoc(path, await readFileIfExists(path));
    if (existing !== undefined && Object.hasOwn(existing, 'apps') && !isTable(existing['apps'])) {
      throw renderError(path, '`apps` is not an object; fix the file by hand (init never replaces the app allowlist)');
    }
    const defaults = JSON.parse(await readFile(join(templates, 'auth-config.json'), 'utf8')) as Doc;
    const merged = mergeOperatorEdits(path, defaults, existing, authConfigEnforced(init, pin, existing));
    if (!merged.changed) return { path, written: false, warnings: merged.warnings };
    const written = await writeIfChanged(path, `${JSON.stringify(merged.doc, null, 2)}\n`);
    return { path, written, warnings: merged.warnings };
  } finally {
    await lock.release();
  }
}

// Env files hold nothing but values from supervisor.toml: rewritten whole when they differ.
async function renderEnv(path: string, values: Record<string, string>): Promise<Outcome> {
  const body = Object.entries(values).map(([k, v]) => `${k}=${v}`).join('\n');
  const text = `# Rendered by \`dstack-supervisor init\` from supervisor.toml [init]; edits here are replaced.\n${body}\n`;
  const before = await readFileIfExists(path);
  const warnings = before !== undefined && before !== text ? [`${path}: differs from supervisor.toml [init]; rewriting it (change supervisor.toml instead)`] : [];
  return { path, written: await writeIfChanged(path, text), warnings };
}

async function readToml(path: string): Promise<Doc | undefined> {
  const text = await readFileIfExists(path);
  if (text === undefined) return undefined;
  try {
    return parseToml(text);
  } catch (err) {
    throw renderError(path, 'is not valid TOML; fix it, or move it away to get a fresh one', err);
  }
}

function parseJsonDoc(path: string, text: string | undefined): Doc | undefined {
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw renderError(path, 'is not valid JSON; fix it by hand (init never replaces the app allowlist)', err);
  }
  if (!isTable(value)) throw renderError(path, 'the top level is not a JSON object; fix it by hand');
  return value;
}
