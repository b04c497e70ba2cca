// `dstack-supervisor kms measurement | allow MR_AGGREGATED [--os-image HASH]`: the two steps of a
// KMS replica (issue 17, docs/fleet.md "KMS replicas"). A KMS hands its keys only to a KMS whose
// measurement its host's auth-config.json lists in `kms.mrAggregated`, and a replica takes them
// only from a KMS its own host lists there: `measurement` prints this host's KMS's, read through
// dstack-vmm from its guest agent; `allow` lists another's here.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { openAllowlist } from '../auth/allowlist.ts';
import { writeError } from '../auth/errors.ts';
import { loadConfig, type Config } from '../config.ts';
import { SupervisorError } from '../errors.ts';
import { readInitJournal } from '../init/journal.ts';
import { findKmsVm } from '../init/kms.ts';
import { createVmmClient } from '../vmm/client.ts';
import { readCvmMeasurement, type CvmMeasurement } from '../vmm/guest-info.ts';
import { parseCommand, usageError } from './args.ts';
import { COMMAND_SPECS } from './commands.ts';

// Run the command; exit 0 with the answer, 1 when it cannot be had, 2 on bad usage.
export async function run(args: string[]): Promise<number> {
  const spec = COMMAND_SPECS.kms;
  const parsed = parseCommand('kms', spec, args);
  if (!parsed.ok) return parsed.exitCode;
  const { values, operands } = parsed;
  const [action, value] = operands;
  if (action === 'measurement' && value !== undefined) return usageError('kms', spec, `unexpected argument '${value}'`);
  if (action === 'allow' && value === undefined) return usageError('kms', spec, 'missing MR_AGGREGATED');
  if (action !== 'measurement' && action !== 'allow') return usageError('kms', spec, `unknown action '${action ?? ''}' (measurement or allow)`);
  try {
    const config = await loadConfig(values.config);
    if (action === 'allow') {
      const added = await allowKms(config.auth.config_path, value ?? '', values['os-image'] ?? '');
      process.stdout.write(`${config.auth.config_path}: ${added ? 'added' : 'already listed'}: kms.mrAggregated ${value}${values['os-image'] === undefined ? '' : `, osImages ${values['os-image']}`}\n`);
      return 0;
    }
    const { vmId, measurement } = await measureKms(config);
    process.stdout.write(values.json ? `${JSON.stringify({ vm_id: vmId, mr_aggregated: measurement.mrAggregated, os_image_hash: measurement.osImageHash, device_id: measurement.deviceId })}\n` : formatMeasurement(vmId, measurement));
    return 0;
  } catch (err) {
    if (!(err instanceof SupervisorError)) throw err;
    process.stderr.write(`dstack-supervisor kms: ${err.message}\n`);
    return 1;
  }
}

// List the measurement (and image) in auth-config.json; true when the file changed. Before the
// first init the file does not exist: it is made with only `apps`, and init's render keeps what
// this adds (kms.mrAggregated is the operator's; osImages gains the image pin), so a replica's
// host can trust its source before its first start.
async function allowKms(path: string, mrAggregated: string, osImageHash: string): Promise<boolean> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, '{\n  "apps": {}\n}\n', { flag: 'wx', mode: 0o644 }).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw writeError(path, 'creating it before the first init', err);
  });
  const allowlist = openAllowlist(path);
  try {
    const before = await allowlist.read();
    await allowlist.allowKms(mrAggregated, osImageHash);
    const after = await allowlist.read();
    return after.kms.mrAggregated.length !== before.kms.mrAggregated.length || after.osImages.length !== before.osImages.length;
  } finally {
    await allowlist.close();
  }
}

// This host's KMS CVM (the one init recorded, else found by name, as init finds it) and its measurement.
async function measureKms(config: Config): Promise<{ vmId: string; measurement: CvmMeasurement }> {
  const tokenFile = config.vmm.token_file === '' ? undefined : config.vmm.token_file;
  const vmm = createVmmClient({ url: config.vmm.url, tokenFile, mode: config.vmm.mode, timeoutMs: config.vmm.timeout_ms });
  try {
    const known = (await readInitJournal(config.state_dir)).steps.kms?.detail['vm_id'];
    const { vm } = await findKmsVm(vmm, typeof known === 'string' ? known : undefined);
    if (vm === undefined) throw new SupervisorError('KMS_NOT_FOUND', `dstack-vmm at ${config.vmm.url} runs no KMS CVM (dstack-kms); run init first`);
    return { vmId: vm.id, measurement: await readCvmMeasurement(config.vmm.url, tokenFile, vm.id) };
  } finally {
    await vmm.close();
  }
}

function formatMeasurement(vmId: string, m: CvmMeasurement): string {
  return [
    `kms vm         ${vmId}`,
    `mr_aggregated  ${m.mrAggregated}`,
    `os_image_hash  ${m.osImageHash}`,
    `device_id      ${m.deviceId}`,
    `On the other host of the pair: dstack-supervisor kms allow ${m.mrAggregated} --os-image ${m.osImageHash}`,
    '',
  ].join('\n');
}
