// Init step 6: a KMS CVM that has really bootstrapped. Reuse the one the journal names, else
// adopt a `dstack-kms` CVM found by name (a lost journal, or one that `destroy` stopped to keep
// its keys), else create it (docs/dstack.md §5.5); move its port mapping to `[init]
// kms_host_address` if that changed (UpdateVm, then a restart); start it if it is stopped; then
// wait until its boot is `done` AND its RPC answers over HTTPS (docs/dstack.md §5.6). A healthy
// KMS costs read-only calls only: no CreateVm, no StartVm.
import type { Clock } from '../clock.ts';
import { waitBooted, waitGone, waitStopped, VmWaitError } from '../controller/vm-wait.ts';
import { describeError, SupervisorError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import type { VmmClient } from '../vmm/client.ts';
import type { VmInfo } from '../vmm/messages.ts';
import { KMS_GUEST_PORT } from './derived-keys.ts';
import { isKmsCompose, kmsHostAddresses, kmsPortMappings, KMS_VM_NAME, kmsVmConfig } from './kms-compose.ts';
import type { KmsProbe } from './kms-probe.ts';

// Stable codes of a KMS that would not come up; FROZEN and LOST need the operator (issue 16):
// a KMS with keys is never changed, and one that vanished is never replaced without being told.
export type KmsErrorCode = 'INIT_KMS_BOOT' | 'INIT_KMS_TIMEOUT' | 'INIT_KMS_PORT' | 'INIT_KMS_FROZEN' | 'INIT_KMS_LOST';

// What the operator can do about a KMS that must not change, said once for both refusals.
const KMS_WAYS_OUT =
  'to move to a KMS made differently, deploy it on another host onboarding from this one (upstream\'s Onboard service) and move the apps there; ' +
  'to start over with new keys, knowing that apps lose what they sealed: dstack-supervisor destroy --purge, then start the service again';

// The KMS CVM failed to boot or bootstrap; carries what the guest said about it.
export class KmsError extends SupervisorError {
  declare readonly code: KmsErrorCode;
  readonly vmId: string;
  readonly bootError: string;
  readonly logLines: readonly string[];
  constructor(code: KmsErrorCode, message: string, facts: { vmId: string; bootError?: string; logLines?: readonly string[] }) {
    super(code, message);
    this.name = 'KmsError';
    this.vmId = facts.vmId;
    this.bootError = facts.bootError ?? '';
    this.logLines = facts.logLines ?? [];
  }
}

// What the KMS CVM is made of: the image, its app-compose (kms.toml inside), the host port
// kms_urls name and `[init] kms_host_address`, the host as guests see it, and the VM id the
// journal remembers.
// `keysAreVolatile`: a simulated host's KMS lives in memory and is gone after every restart, so
// a new one is expected; on a real host its keys are on the CVM's disk and a vanished KMS is loss.
export type KmsInputs = { image: string; composeFile: string; port: number; hostAddress: string; guestHost: string; knownVmId: string | undefined; keysAreVolatile: boolean };

// The edges: the VMM, the HTTPS probe, the VM log reader, time, and progress for STATUS=.
export type KmsDeps = {
  vmm: VmmClient;
  probe: KmsProbe;
  vmLogs: (id: string) => Promise<string[]>;
  clock: Clock;
  log: Logger;
  progress: (what: string) => void;
  // Boot plus bootstrap, from the moment the CVM was (re)started or found.
  timeoutMs: number;
  pollMs: number;
  // A KMS replica: called until the KMS has its keys from the source (kms-onboard.ts).
  onboard?: (vmId: string) => Promise<void>;
};

// The running KMS: its VM, the URL guests use (`[apps] kms_urls`), the one the host probes,
// and its k256 public key (`[apps] kms_public_key`).
export type KmsInfo = { vmId: string; url: string; hostUrl: string; k256Pubkey: string; caCert: string };

// Make sure the KMS CVM exists, runs and answers; see the module comment.
export async function ensureKms(inputs: KmsInputs, deps: KmsDeps): Promise<KmsInfo> {
  const { vmm, log } = deps;
  const found = await findKmsVm(vmm, inputs.knownVmId);
  let vmId: string;
  if (found.vm === undefined) {
    if (inputs.knownVmId !== undefined && !inputs.keysAreVolatile) {
      throw new KmsError(
        'INIT_KMS_LOST',
        `init kms: the KMS CVM ${inputs.knownVmId} that init recorded is gone from dstack-vmm, and with it the root keys every app's keys derive from ` +
          `(unless its disk is still under the VMM's run_path). A new KMS would have new keys: no app could open what it sealed. Nothing was created; ${KMS_WAYS_OUT}`,
        { vmId: inputs.knownVmId },
      );
    }
    if (inputs.knownVmId !== undefined) {
      log.info({ VM: inputs.knownVmId }, `simulated host: the KMS CVM ${inputs.knownVmId} of the last start is gone with it; deploying a new one`);
    }
    // A KMS being removed keeps its host port until the VMM has finished with it (docs/dstack.md §2).
    for (const id of found.removing) await waitGone(vmm, id, deps.clock, { pollMs: deps.pollMs, timeoutMs: deps.timeoutMs });
    deps.progress('deploying KMS CVM');
    vmId = (await vmm.createVm(kmsVmConfig({ image: inputs.image, composeFile: inputs.composeFile, hostPort: inputs.port, hostAddress: inputs.hostAddress }))).id;
    log.info({ VM: vmId, PORT: inputs.port }, `created the KMS CVM ${vmId} (${KMS_VM_NAME}, host port ${inputs.port})`);
  } else {
    vmId = found.vm.id;
    checkKmsVm(found.vm, inputs);
    let status = found.vm.status;
    if ((await remapKmsPorts(found.vm, inputs, deps)) && status === 'running') {
      deps.progress('restarting the KMS CVM on its new port mapping');
      await vmm.stopVm(vmId);
      status = 'stopping';
    }
    if (status === 'stopping' && !(await waitStopped(vmm, vmId, deps.clock, { pollMs: deps.pollMs, timeoutMs: deps.timeoutMs }))) {
      throw await kmsFailure('INIT_KMS_TIMEOUT', vmId, 'did not stop in time to be started again', deps);
    }
    if (['stopped', 'exited', 'stopping'].includes(status)) {
      deps.progress('starting the KMS CVM');
      await vmm.startVm(vmId);
      log.info({ VM: vmId }, `started the ${status} KMS CVM ${vmId}; it keeps its disk, so the same KMS keys`);
    }
  }
  const hostUrl = `https://127.0.0.1:${inputs.port}`;
  const deadline = deps.clock.now() + deps.timeoutMs;
  deps.progress('waiting for the KMS CVM to boot');
  try {
    await waitBooted(vmm, vmId, deps.clock, { pollMs: deps.pollMs, timeoutMs: deps.timeoutMs });
  } catch (err) {
    if (!(err instanceof VmWaitError)) throw err;
    const code = err.code === 'VM_BOOT_TIMEOUT' ? 'INIT_KMS_TIMEOUT' : 'INIT_KMS_BOOT';
    throw await kmsFailure(code, vmId, err.message, deps);
  }
  if (deps.onboard !== undefined) {
    const onboard = deps.onboard;
    deps.progress('onboarding the KMS from its source KMS');
    await waitAnswering(() => onboard(vmId), hostUrl, vmId, deadline, deps);
  }
  deps.progress('waiting for the KMS to bootstrap its keys');
  const meta = await waitAnswering(() => deps.probe(hostUrl), hostUrl, vmId, deadline, deps);
  return { vmId, url: `https://${inputs.guestHost}:${inputs.port}`, hostUrl, k256Pubkey: meta.k256Pubkey, caCert: meta.caCert };
}

// The KMS CVM to use: the journal's, else the newest `dstack-kms` whose compose is a KMS's;
// plus KMS CVMs being removed, which a new one must wait out.
export async function findKmsVm(vmm: VmmClient, knownVmId: string | undefined): Promise<{ vm: VmInfo | undefined; removing: string[] }> {
  const { vms } = await vmm.status({ brief: true });
  const removing = vms.filter((v) => v.status === 'removing' && (v.id === knownVmId || v.name === KMS_VM_NAME)).map((v) => v.id);
  const live = vms.filter((v) => v.status !== 'removing');
  const byName = live.filter((v) => v.name === KMS_VM_NAME && v.id !== knownVmId).reverse();
  for (const candidate of [...live.filter((v) => v.id === knownVmId), ...byName]) {
    const { info } = await vmm.getInfo(candidate.id);
    if (info?.configuration !== undefined && isKmsCompose(info.configuration.compose_file)) return { vm: info, removing };
  }
  return { vm: undefined, removing };
}

// An adopted KMS must publish the port kms_urls name, and be made as init would make it now: its
// sealing key derives from its measurement (image, compose, resources), so a KMS changed after
// bootstrap could not open its own root keys. A difference is refused, never applied.
function checkKmsVm(vm: VmInfo, inputs: KmsInputs): void {
  const published = vm.configuration?.ports.find((p) => p.vm_port === KMS_GUEST_PORT)?.host_port;
  if (published !== inputs.port) {
    const what = published === undefined ? 'publishes no RPC port' : `publishes its RPC on host port ${published}`;
    const fix = published === undefined ? 'remove it (dstack-supervisor destroy --purge) and re-run init' : `set [init] kms_port = ${published} in supervisor.toml and re-run init`;
    throw new KmsError('INIT_KMS_PORT', `init kms: KMS CVM ${vm.id} ${what}, but vmm.toml's kms_urls name port ${inputs.port}; ${fix}`, { vmId: vm.id });
  }
  const changed = [
    ...(vm.configuration?.compose_file !== inputs.composeFile ? ['app-compose (kms.toml, or the [init] keys rendered into it)'] : []),
    ...(vm.configuration?.image !== inputs.image ? [`guest image (${vm.configuration?.image} -> ${inputs.image}; pin [init] image = "${vm.configuration?.image}")`] : []),
  ];
  if (changed.length > 0) {
    throw new KmsError(
      'INIT_KMS_FROZEN',
      `init kms: the KMS CVM ${vm.id} has its keys, and init would now make it with a different ${changed.join(' and a different ')}. ` +
        `Its sealing key derives from its measurement, so a changed KMS could not open its own root keys: it is never changed. ` +
        `Put the setting back, or ${KMS_WAYS_OUT}`,
      { vmId: vm.id },
    );
  }
}

// Publish the KMS on the addresses `[init] kms_host_address` asks for, if it is published on
// others; true when it was. Unlike the compose or the image, the port map is not measured (it is
// QEMU's host-side hostfwd, not part of sys-config's vm_config: upstream vmm app.rs
// `make_vm_config`), so the same KMS opens the same keys on a new address. UpdateVm changes it
// only for the next launch (docs/dstack.md §2.2), hence the caller's restart.
async function remapKmsPorts(vm: VmInfo, inputs: KmsInputs, deps: KmsDeps): Promise<boolean> {
  const sorted = (addresses: string[]): string => addresses.sort().join(', ');
  const published = sorted((vm.configuration?.ports ?? []).filter((p) => p.vm_port === KMS_GUEST_PORT).map((p) => p.host_address));
  const wanted = sorted(kmsHostAddresses(inputs.hostAddress));
  if (published === wanted) return false;
  await deps.vmm.updateVm({ id: vm.id, update_ports: true, ports: kmsPortMappings(inputs.hostAddress, inputs.port) });
  deps.log.info({ VM: vm.id, PORT: inputs.port }, `moved the KMS CVM ${vm.id}'s port ${inputs.port} from ${published} to ${wanted} ([init] kms_host_address); it restarts with the same disk and measurement, so the same KMS keys`);
  return true;
}

// Try `attempt` until it passes (the KMS answers over HTTPS, or was onboarded); fail early if the
// CVM stops running meanwhile, or at once on an error that names its own code (a refusal).
async function waitAnswering<T>(attempt: () => Promise<T>, hostUrl: string, vmId: string, deadline: number, deps: KmsDeps): Promise<T> {
  let lastProblem = '';
  for (;;) {
    try {
      return await attempt();
    } catch (err) {
      if (err instanceof SupervisorError) throw err;
      lastProblem = describeError(err);
    }
    const vm = (await deps.vmm.status({ ids: [vmId], brief: true })).vms.find((v) => v.id === vmId);
    if (vm === undefined || vm.status !== 'running' || vm.boot_error !== '') {
      throw await kmsFailure('INIT_KMS_BOOT', vmId, `stopped running before its RPC answered at ${hostUrl}`, deps);
    }
    if (deps.clock.now() >= deadline) {
      const budget = deps.timeoutMs < 10_000 ? `${deps.timeoutMs} ms` : `${Math.round(deps.timeoutMs / 1000)} s`;
      throw await kmsFailure('INIT_KMS_TIMEOUT', vmId, `booted, but its RPC did not answer over HTTPS at ${hostUrl} within ${budget} (last answer: ${lastProblem})`, deps);
    }
    await deps.clock.sleep(deps.pollMs);
  }
}

// The operator's story of a KMS that did not come up: what happened, the guest's boot_error,
// its last log lines, and what to do.
async function kmsFailure(code: KmsErrorCode, vmId: string, what: string, deps: KmsDeps): Promise<KmsError> {
  const vm = await deps.vmm.status({ ids: [vmId], brief: true }).then((r) => r.vms.find((v) => v.id === vmId), () => undefined);
  const logLines = await deps.vmLogs(vmId);
  const bootError = vm?.boot_error ?? '';
  const state = vm === undefined ? 'it is no longer listed by dstack-vmm' : `status ${vm.status}, boot_progress "${vm.boot_progress}"`;
  const message = [
    `init kms: KMS CVM ${vmId} ${what}`,
    `  ${state}; boot_error: ${bootError === '' ? '(none reported)' : bootError}`,
    `last lines of its log (GET /logs?id=${vmId} on dstack-vmm):`,
    ...(logLines.length > 0 ? logLines : ['(empty)']).map((line) => `  ${line}`),
    'next: fix the cause above (on TDX a guest that cannot reach a PCCS fails "Failed to get sealing key": check gramine-sealing-key-provider), ' +
      'then start init again (systemctl restart dstack-supervisor); it reuses this CVM and its disk',
  ].join('\n');
  return new KmsError(code, message, { vmId, bootError, logLines });
}
