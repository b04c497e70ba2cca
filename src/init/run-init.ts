// `dstack-supervisor init`: the first start of a host, nobody in the loop (issue 4, docs/design.md
// "Init"). Steps run in order and each finished one is recorded in `<state_dir>/init.json`. A
// re-run goes through every step again, and every step only verifies what is in place and
// repairs what drifted: on a healthy host it writes no file, starts no unit and sends the VMM no
// mutating call. The preflight comes first, so a host that is not ready is left untouched.
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { systemClock, type Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log/logger.ts';
import type { SystemdManager } from '../systemd/types.ts';
import type { VmmClient } from '../vmm/client.ts';
import type { DownloadDeps } from './image-download.ts';
import { ensureGuestImage } from './image.ts';
import { INIT_STEPS, initJournalPath, readInitJournal, recordInitStep, type InitStep, type StepDetail } from './journal.ts';
import { kmsAppCompose } from './kms-compose.ts';
import { checkOnboardSource, checkSourceTrusted, createOnboarder, type OnboardSource } from './kms-onboard.ts';
import { createKmsProber, type KmsProbe } from './kms-probe.ts';
import { ensureKms, type KmsInfo } from './kms.ts';
import type { PortProbe } from './kms-port.ts';
import { onboardFailed, PreflightError, type PreflightProblem } from './errors.ts';
import { findHostProblems } from './preflight.ts';
import { probeGpus, reviewGpus } from './gpu-probe.ts';
import { configPaths, renderHostConfig } from './render.ts';
import { ensureHostCa, type TlsDeps } from './tls.ts';
import { describePlatformChoice, resolvePlatform } from './platform.ts';
import { hostUnitsFor, startHostUnits, waitVmmAnswering } from './units.ts';

// How long init waits. The KMS budget covers the CVM's boot and its key bootstrap; a first boot
// on real hardware pulls the KMS image inside the CVM.
export type InitTiming = { kmsTimeoutMs: number; vmmTimeoutMs: number; pollMs: number };

const DEFAULT_TIMING: InitTiming = { kmsTimeoutMs: 600_000, vmmTimeoutMs: 30_000, pollMs: 2_000 };

// Everything init touches, injected: the config, systemd, the VMM (and its /logs), the log, the
// STATUS= line, and for tests the clock, the KMS probe, timings, TLS names, port probe, templates.
export type InitDeps = {
  config: Config;
  systemd: SystemdManager;
  vmm: VmmClient;
  vmLogs: (id: string) => Promise<string[]>;
  log: Logger;
  status: (text: string) => void;
  clock?: Clock;
  kmsProbe?: KmsProbe;
  timing?: Partial<InitTiming>;
  tls?: TlsDeps;
  isPortFree?: PortProbe;
  templatesDir?: string;
  download?: DownloadDeps;
  // What the preflight found when the caller ran it before connecting systemd and the VMM
  // (initHost); run here otherwise.
  preflight?: readonly PreflightProblem[];
};

// What init left in place: the KMS, the files it wrote (none on a healthy re-run), the units it
// started or restarted (none on a healthy re-run).
export type InitResult = { kms: KmsInfo; written: string[]; started: string[]; restarted: string[] };

// Run (or re-run) init; throws the first step's failure (PreflightError, InitError, SystemdError,
// KmsError, VmmError), after recording every step that finished.
export async function runInit(deps: InitDeps): Promise<InitResult> {
  const { config, log } = deps;
  const init = config.init;
  const clock = deps.clock ?? systemClock;
  const timing = { ...DEFAULT_TIMING, ...deps.timing };
  const journal = await readInitJournal(config.state_dir);
  const written: string[] = [];
  const step = (index: number, what: string): void => {
    const text = `init ${index}/${INIT_STEPS.length}: ${what}`;
    deps.status(text);
    log.info({ STEP: INIT_STEPS[index - 1] }, text);
  };
  const record = async (name: InitStep, detail: StepDetail): Promise<void> => {
    if (await recordInitStep(config.state_dir, name, detail, () => clock.now())) written.push(initJournalPath(config.state_dir));
  };

  step(1, 'checking the host (TDX or SEV-SNP, SGX, KVM, docker, dstack binaries, GPUs)');
  const choice = await resolvePlatform(init);
  const platform = choice.platform;
  log.info({ STEP: 'preflight', PLATFORM: platform }, `preflight: ${describePlatformChoice(choice)}`);
  const problems = deps.preflight ?? (await findHostProblems(init));
  if (problems.length > 0) throw new PreflightError(problems, init.sysroot);
  // GPUs are optional: what is found is said, a GPU no CVM can have is a warning, none is fine.
  const gpus = await probeGpus(init.sysroot);
  const review = reviewGpus(gpus);
  for (const note of review.notes) log.info({ STEP: 'preflight' }, `preflight: ${note}`);
  for (const warning of review.warnings) log.warn({ STEP: 'preflight' }, `preflight: ${warning}`);
  // A KMS replica not yet onboarded from this source: what can be checked is, before any change.
  let source: OnboardSource | undefined;
  if (init.kms_onboard_from !== '' && journal.steps.kms?.detail['onboarded_from'] !== init.kms_onboard_from) {
    step(1, `checking the source KMS ${init.kms_onboard_from}`);
    const sourceProber = createKmsProber();
    try {
      source = await checkOnboardSource(init.kms_onboard_from, deps.kmsProbe ?? sourceProber.probe);
    } finally {
      await sourceProber.close();
    }
  }
  await record('preflight', { sysroot: init.sysroot, platform });

  step(2, 'verifying the guest image');
  const image = await ensureGuestImage(init, deps.download, config.sim.enabled);
  await record('image', { name: image.name, pin: image.pin });

  step(3, 'rendering vmm.toml, kms.toml, auth-config.json');
  const paths = configPaths(init, config.auth.config_path);
  const previousPort = journal.steps.render?.detail['kms_port'];
  const previousGpuTable = journal.steps.render?.detail['gpu'];
  const rendered = await renderHostConfig({
    init,
    vmmUrl: config.vmm.url,
    authConfigPath: config.auth.config_path,
    osImagePin: image.pin,
    platform,
    previousKmsPort: typeof previousPort === 'number' ? previousPort : undefined,
    isPortFree: deps.isPortFree,
    templatesDir: deps.templatesDir,
    gpus,
    ...(typeof previousGpuTable === 'string' ? { previousGpuTable } : {}),
  });
  for (const warning of rendered.warnings) log.warn(warning);
  for (const note of rendered.notes) log.info(note);
  written.push(...rendered.written);
  if (source !== undefined) await checkSourceTrusted(source.url, paths.authConfig);
  await record('render', { kms_port: rendered.kmsPort, ...(rendered.gpuTable === undefined ? {} : { gpu: rendered.gpuTable }) });

  step(4, 'the host CA (tls/ca.crt)');
  const tls = await ensureHostCa(join(init.config_dir, 'tls'), deps.tls);
  written.push(...tls.written);
  await record('tls', { ca_sha256: new X509Certificate(await readFile(tls.paths.caCert)).fingerprint256 });

  const hostUnits = hostUnitsFor(platform);
  step(5, `starting ${hostUnits.map((u) => u.replace(/\.service$/, '')).join(', ')}`);
  const changed = (path: string): boolean => rendered.written.includes(path);
  const units = await startHostUnits(deps.systemd, platform, { authSimpleEnv: changed(paths.authSimpleEnv), keyProviderEnv: changed(paths.keyProviderEnv), vmmToml: changed(paths.vmmToml) }, log);
  await waitVmmAnswering(deps.vmm, clock, { timeoutMs: timing.vmmTimeoutMs, pollMs: Math.min(timing.pollMs, 500) });
  await record('units', { units: hostUnits.join(' ') });

  step(6, 'checking the KMS CVM');
  const knownVmId = journal.steps.kms?.detail['vm_id'];
  const prober = createKmsProber();
  const probe = deps.kmsProbe ?? prober.probe;
  const onboarder =
    init.kms_onboard_from === ''
      ? undefined
      : createOnboarder({ sourceUrl: init.kms_onboard_from, domain: init.guest_host_address, authConfigPath: config.auth.config_path, port: rendered.kmsPort, probe, log });
  let kms: KmsInfo;
  try {
    kms = await ensureKms(
      {
        image: image.name,
        composeFile: kmsAppCompose(await readFile(paths.kmsToml, 'utf8'), paths.kmsToml, platform),
        port: rendered.kmsPort,
        hostAddress: init.kms_host_address,
        guestHost: init.guest_host_address,
        knownVmId: typeof knownVmId === 'string' ? knownVmId : undefined,
        keysAreVolatile: config.sim.enabled,
      },
      {
        vmm: deps.vmm,
        probe,
        vmLogs: deps.vmLogs,
        clock,
        log,
        progress: (what) => step(6, what),
        timeoutMs: timing.kmsTimeoutMs,
        pollMs: timing.pollMs,
        ...(onboarder === undefined ? {} : { onboard: onboarder.attempt }),
      },
    );
  } finally {
    await prober.close();
    await onboarder?.close();
  }
  // The proof of the handover: the replica signs with the source's k256 key.
  if (source !== undefined && kms.k256Pubkey !== source.k256Pubkey) {
    throw onboardFailed(source.url, kms.vmId, `the KMS serves k256 key ${kms.k256Pubkey}, not the source's ${source.k256Pubkey}; it was onboarded from another KMS: remove it (dstack-supervisor destroy --purge) and start again`);
  }
  const measured = onboarder?.measurement()?.mrAggregated ?? journal.steps.kms?.detail['mr_aggregated'];
  await record('kms', {
    vm_id: kms.vmId,
    url: kms.url,
    port: rendered.kmsPort,
    k256_pubkey: kms.k256Pubkey,
    ...(init.kms_onboard_from === '' ? {} : { onboarded_from: init.kms_onboard_from }),
    ...(measured === undefined ? {} : { mr_aggregated: measured }),
  });
  const summary = `init done: KMS CVM ${kms.vmId} answers at ${kms.hostUrl} (guests use ${kms.url})`;
  deps.status(summary);
  log.info({ VM: kms.vmId, FILES_WRITTEN: written.length, UNITS_STARTED: units.started.length }, summary);
  return { kms, written, started: units.started, restarted: units.restarted };
}
