// `dstack-supervisor hash FILE [--json] [--config FILE]`: what the supervisor would deploy for a
// compose file — app id, compose hash, host ports, the GPUs it asks for, warnings and the exact
// manifest — without touching the VMM. The manifest printed is the string whose sha256 is the
// compose hash.
import { readFile, stat } from 'node:fs/promises';
import { readEnvFile } from '../secrets/env-file.ts';
import { envDigestKeyPath, readEnvDigester } from '../status/env-digest.ts';
import { AppError } from '../app/errors.ts';
import { describeGpuRequest } from '../app/gpus.ts';
import { appIdOf } from '../app/manifest.ts';
import { decodeComposeText } from '../app/parse.ts';
import { appNameOfFile } from '../app/name.ts';
import { appDefaultsOf, buildAppSpec, hostPortPolicyOf } from '../app/spec.ts';
import type { ReservedPort } from '../app/host-ports.ts';
import type { AppSpec } from '../app/spec.ts';
import { formatWarning } from '../app/warning.ts';
import { loadConfig } from '../config.ts';
import type { Config } from '../config.ts';
import { loadReservedHostPorts, reservedHostPorts } from '../init/reserved-ports.ts';
import { SupervisorError, describeError } from '../errors.ts';
import { parseCommand } from './args.ts';
import { COMMAND_SPECS } from './commands.ts';

// Run the command; exit 0 with the report, 1 when the file cannot be deployed, 2 on bad usage.
export async function run(args: string[]): Promise<number> {
  const parsed = parseCommand('hash', COMMAND_SPECS.hash, args);
  if (!parsed.ok) return parsed.exitCode;
  const { values, operands: [file] } = parsed;
  if (file === undefined) throw new Error('parseCommand let hash run without its FILE');
  try {
    const config = await loadConfig(values.config);
    const text = decodeComposeText(file, await readComposeFile(file, config.apps.max_file_bytes));
    // NAME.env's key names are part of the manifest (allowed_envs); its values never are.
    const env = await readEnvFile(file, { owner: config.apps.owner });
    const hostPorts = hostPortPolicyOf(config.apps, await reservedPortsOf(config));
    const spec = buildAppSpec({ name: appNameOfFile(file), file, text, envKeys: env?.keys, defaults: appDefaultsOf(config.apps), hostPorts });
    const envDigest = env ? await envDigestOf(config, env.valuesHash) : null;
    process.stdout.write(values.json ? `${JSON.stringify(toJson(spec, envDigest), null, 2)}\n` : formatText(spec, envDigest));
    return 0;
  } catch (err) {
    if (!(err instanceof SupervisorError)) throw err;
    // A refused file may also have warnings; show them now rather than after the next fix.
    const warnings = err instanceof AppError ? err.warnings.map((w) => `warning: ${formatWarning(w)}\n`) : [];
    process.stderr.write(`dstack-supervisor hash: ${err.message}\n${warnings.join('')}`);
    return 1;
  }
}

// The ports the supervisor would refuse; an init.json this user cannot read leaves out the ports
// only it knows, with a warning, rather than refusing to hash.
async function reservedPortsOf(config: Config): Promise<ReservedPort[]> {
  try {
    return await loadReservedHostPorts(config);
  } catch (err) {
    if (!(err instanceof SupervisorError)) throw err;
    process.stderr.write(`dstack-supervisor hash: warning: ${err.message}; host ports init gave the KMS are not checked\n`);
    return reservedHostPorts(config, { version: 1, steps: {} });
  }
}

// What the status's env_digest will say once the app's VM has these values (issue 17); null, with
// a warning, when this user cannot read the service's key or it has none yet.
async function envDigestOf(config: Config, valuesHash: string): Promise<string | null> {
  try {
    const digester = await readEnvDigester(config.state_dir);
    if (digester) return digester(valuesHash);
    process.stderr.write(`dstack-supervisor hash: warning: no ${envDigestKeyPath(config.state_dir)} yet (the service has not run with this state_dir): env_digest is null\n`);
  } catch (err) {
    if (!(err instanceof SupervisorError)) throw err;
    process.stderr.write(`dstack-supervisor hash: warning: ${err.message}: env_digest is null\n`);
  }
  return null;
}

// The file's bytes, refused past `maxBytes` before they are read, as the supervisor refuses it.
async function readComposeFile(file: string, maxBytes: number): Promise<Buffer> {
  const cannotRead = (cause: unknown) =>
    new SupervisorError('HASH_READ', `${file}: cannot read the compose file (${describeError(cause)})`, { cause });
  const tooLarge = (size: number) =>
    new SupervisorError('APP_TOO_LARGE', `${file}: is ${size} bytes, over the ${maxBytes}-byte limit ([apps] max_file_bytes); shrink it or raise the limit`);
  const { size } = await stat(file).catch((cause: unknown) => Promise.reject(cannotRead(cause)));
  if (size > maxBytes) throw tooLarge(size);
  const bytes = await readFile(file).catch((cause: unknown) => Promise.reject(cannotRead(cause)));
  if (bytes.length > maxBytes) throw tooLarge(bytes.length);
  return bytes;
}

function toJson(spec: AppSpec, envDigest: string | null) {
  return {
    name: spec.name,
    app_id: appIdOf(spec.composeHash),
    compose_hash: spec.composeHash,
    // The status's env_digest once the VM runs NAME.env as it is now; null without NAME.env.
    env_digest: envDigest,
    ports: spec.ports,
    // x-dstack.gpus as the supervisor reads it: "all", a count, or PCI addresses in sysfs form;
    // null for none. Which GPUs the CVM gets is decided at deploy time, across apps.
    gpus: spec.gpus ?? null,
    warnings: spec.warnings,
    manifest: spec.manifest,
  };
}

function formatText(spec: AppSpec, envDigest: string | null): string {
  const ports = spec.ports.map((p) => `${p.protocol} ${p.host_address}:${p.host_port} -> CVM ${p.vm_port}`);
  const warnings = spec.warnings.map(formatWarning);
  const list = (items: string[]) => (items.length === 0 ? ['(none)'] : items).join('\n' + ' '.repeat(14));
  return [
    `name          ${spec.name}`,
    `app id        ${appIdOf(spec.composeHash)}`,
    `compose hash  ${spec.composeHash}`,
    `env digest    ${envDigest ?? '(none)'}`,
    `ports         ${list(ports)}`,
    `gpus          ${spec.gpus === undefined ? '(none)' : describeGpuRequest(spec.gpus)}`,
    `warnings      ${list(warnings)}`,
    'manifest',
    spec.manifest,
    '',
  ].join('\n');
}
