// The composition root of the service: builds every edge (VMM client, allowlist, state, status,
// scanner, watcher, notifier) from supervisor.toml and wires them into the reconcile loop. It is
// the one module in src/ that imports watchers/ and handlers/: everything else receives its
// collaborators as arguments.
import type { Config } from './config.ts';
import type { Logger } from './log/logger.ts';
import { systemClock, type Clock } from './clock.ts';
import { createVmmClient, type VmmClient } from './vmm/client.ts';
import { openAllowlist } from './auth/allowlist.ts';
import { openStateStore } from './state/store.ts';
import { writeAppStatus, removeAppStatus, writeSupervisorStatus, readAllStatuses } from './status/store.ts';
import { createScanner } from './appsdir/scan.ts';
import { createChangeHints } from './appsdir/hints.ts';
import { createEnvFileReader } from './secrets/env-file.ts';
import { createBus, BUS_EVENTS } from './bus.ts';
import { createController, type DirListing } from './controller/controller.ts';
import { createReporter, type StatusUpdate } from './controller/reporter.ts';
import { createVmSnapshot } from './controller/vm-snapshot.ts';
import { createRepeatSummariser } from './log/repeat.ts';
import { createNotifier, type Notifier } from './notify/notifier.ts';
import { startWatchdog } from './notify/watchdog.ts';
import { openEnvDigester } from './status/env-digest.ts';
import { createAppLister, createSpecBuilder, observedUpdate } from './controller/adapters.ts';
import { createManagedIndex } from './controller/managed.ts';
import { resolveImage } from './controller/image.ts';
import { createGpuAllocator } from './controller/gpu-allocator.ts';
import { loadReservedHostPorts } from './init/reserved-ports.ts';
import { watchAppsDir, type WatchDir } from '../watchers/apps.ts';
import { reconcileApp, type ReconcileDeps } from '../handlers/reconcile.ts';
import { registerAhead } from '../handlers/register-ahead.ts';
import type { DesiredSpec } from './controller/spec.ts';
import { describeError } from './errors.ts';
import { VERSION } from './version.ts';
import type { EnvEntry } from './secrets/dotenv.ts';
import type { Tier2Service } from './gateway/start.ts';

export type SupervisorOptions = {
  config: Config;
  log: Logger;
  env?: Readonly<Record<string, string | undefined>>;
  clock?: Clock;
  // Poll interval while waiting for a VM to boot, stop or go away ([apps] poll_s unless set).
  pollMs?: number;
  // How long stop() lets in-flight work finish before it leaves the rest to the intent records.
  stopGraceMs?: number;
  // How apps.d's inotify watch is started (watchers/apps.ts's watchDir unless set; tests inject
  // inotify faults through it).
  watchDir?: WatchDir;
};

export type Supervisor = {
  vmm: VmmClient;
  // Resolves when no scan or operation is running or queued.
  idle(): Promise<void>;
  // Ask for a rescan now (as a file event would).
  poke(): void;
  stop(): Promise<void>;
};

// Start watching and reconciling; resolves after the first scan and plan (the READY=1 point).
export async function startSupervisor(options: SupervisorOptions): Promise<Supervisor> {
  const { config, log } = options;
  const clock = options.clock ?? systemClock;
  // Handlers wait (for a boot, a stop, a removal) on this clock; a stop that outlasts its grace
  // ends those waits, so nothing is written after stop() returns. Intent records resume them.
  const abandon = new AbortController();
  const handlerClock: Clock = { ...clock, sleep: (ms, signal) => clock.sleep(ms, signal ?? abandon.signal) };
  const env = options.env ?? process.env;
  const notifier: Notifier = createNotifier({ env, log });
  const vmm = createVmmClient({ url: config.vmm.url, tokenFile: config.vmm.token_file || undefined, mode: config.vmm.mode, timeoutMs: config.vmm.timeout_ms });
  const allowlist = openAllowlist(config.auth.config_path);
  const records = await openStateStore(config.state_dir);
  const snapshot = createVmSnapshot(vmm);
  const image = await resolveImage(vmm, config.apps.image, log);
  let watcherDegraded = false;

  // Writes of _supervisor.json run one after another, and calls made while one waits share it
  // (it reads the counts when it starts): a burst of 1 000 phase changes writes it a few times,
  // not 1 000. stop() waits for the last one.
  let supervisorWrites: Promise<void> = Promise.resolve();
  let supervisorWriteQueued = false;
  const writeSupervisor = (phase: 'init' | 'ready'): Promise<void> => {
    if (supervisorWriteQueued) return supervisorWrites;
    supervisorWriteQueued = true;
    return (supervisorWrites = supervisorWrites.then(() => {
      supervisorWriteQueued = false;
      return writeSupervisorStatus(config.state_dir, {
        phase,
        watcher: watcherDegraded ? 'degraded' : 'ok',
        counts: reporter.counts(),
        version: VERSION,
        updated_at: new Date(clock.now()).toISOString(),
      }).catch((err: unknown) => log.warn({ err }, 'could not write the supervisor status file'));
    }));
  };

  // The statuses as the last run left them: without them every running app was reported
  // `pending` after a restart until its file settled again, at the cost of one status write per
  // app before READY (found by bench/restart.ts). Those of apps the first pass finds with neither
  // a file nor a record go then (`known`). No record is read here: one that cannot be read holds
  // its app, not the start (issue 13).
  const initial = (await readAllStatuses(config.state_dir)).apps;
  const envDigest = await openEnvDigester(config.state_dir);
  let ready = false;
  const reporter = createReporter({
    initial,
    envDigest,
    log,
    repeats: createRepeatSummariser({ log, clock }),
    write: (s) => writeAppStatus(config.state_dir, s),
    remove: (app) => removeAppStatus(config.state_dir, app),
    summary: (line) => {
      if (!ready) return;
      void notifier.status(line);
      void writeSupervisor('ready');
    },
    now: () => clock.now(),
  });

  const scanner = createScanner({
    dir: config.apps_dir,
    owner: config.apps.owner,
    maxFileBytes: config.apps.max_file_bytes,
    settleMs: config.apps.settle_ms,
    now: () => clock.now(),
  });
  const envs = createEnvFileReader({ owner: config.apps.owner });
  // The watcher's hints: an event pass looks again only at the entries they name (issue 18).
  const hints = createChangeHints();

  const timing = {
    pollMs: options.pollMs ?? config.apps.poll_s * 1000,
    bootTimeoutMs: config.apps.boot_timeout_s * 1000,
    shutdownTimeoutMs: config.apps.shutdown_timeout_s * 1000,
    removeTimeoutMs: config.apps.boot_timeout_s * 1000,
  };

  // Tier 2 starts once the first pass has the apps' verdicts; until then no app uses a gateway.
  let tier2: Tier2Service | undefined;
  const specs = createSpecBuilder({ config, image, reservedPorts: await loadReservedHostPorts(config), tier2: (app) => tier2?.forApp(app) });
  const lister = createAppLister({ scanner, envs, dir: config.apps_dir, log, forget: (name) => specs.forget(name) });
  let dirFaultReason: string | undefined;
  // A resync that cannot list the VMs is the VMM's problem, not the directory's: said once until
  // it lists them again; each app then asks for its own VMs (and fails and retries on its own).
  let vmmFaultReason: string | undefined;
  const vmmFault = (err: unknown): void => {
    const reason = err === undefined ? undefined : describeError(err);
    if (reason === vmmFaultReason) return;
    if (reason) log.warn({ err }, `resync: cannot list the VMs of dstack-vmm (${reason}); retrying at the next resync in ${config.apps.resync_s} s`);
    else log.info('resync: dstack-vmm lists the VMs again');
    vmmFaultReason = reason;
  };
  const managed = createManagedIndex({ records, vms: snapshot });
  // Why the last resync could not read the state records (its pass fails with it, as it did when
  // the pass read them itself).
  let recordsFault: unknown;
  const gpus = createGpuAllocator({ listGpus: () => vmm.listGpus(), vms: () => snapshot.known() });
  const controller = createController<DesiredSpec>({
    // A resync reads the VMM's VMs, every record and what differs in apps.d outside the pass, so
    // a drop meanwhile is not held up by it (issue 18); its pass then looks at what differed.
    refresh: async (pace) => {
      const [differing] = await Promise.all([
        lister.differences(pace),
        snapshot.refresh(pace).then(() => vmmFault(undefined), (err: unknown) => vmmFault(err)),
        records.loadAll({ recheck: true, pace }).then(
          () => (recordsFault = undefined),
          (err: unknown) => (recordsFault = err),
        ),
      ]);
      hints.add(differing === undefined ? undefined : [...differing]);
    },
    list: async (): Promise<DirListing> => {
      // A pass that cannot list apps.d would drop the hints it took: the next one looks at all.
      const listing = await lister.listApps(hints.take(false)).catch((err: unknown) => {
        hints.add(undefined);
        throw err;
      });
      if (!listing.ok) hints.add(undefined);
      return listing;
    },
    changed: (name) => snapshot.touched(name),
    build: (app) => specs.build(app),
    // The records as the refresh before a full pass read them, and as our writes left them.
    managed: async () => {
      if (recordsFault !== undefined) throw recordsFault;
      return managed.current();
    },
    claim: (verdicts, managed) => gpus.claim(verdicts, managed),
    shares: (spec) => spec.gpus !== undefined,
    known: initial.map((st) => st.app),
    reconcile: (name) => reconcileApp(name, reconcileDeps),
    prepare: (names) => registerAhead(names, reconcileDeps),
    observed: async (name, verdict, file) => {
      const update = observedUpdate(name, verdict, file, reporter.status(name));
      if (update) await reporter.update(update);
    },
    dirFault: (reason) => {
      if (reason === dirFaultReason) return;
      dirFaultReason = reason;
      if (reason) log.error({ FILE: config.apps_dir }, reason);
      else log.info({ FILE: config.apps_dir }, `${config.apps_dir} can be listed again`);
    },
    massTeardownHeld: (names) =>
      log.warn(
        { FILE: config.apps_dir, REASON: 'mass-teardown guard' },
        `every managed app (${names.join(', ')}) vanished from ${config.apps_dir} in one scan; nothing is torn down ` +
          `until a second scan ${config.apps.resync_s} s later agrees (restore the files to cancel)`,
      ),
    onResult: (name, result) => {
      if (result.kind === 'done') reporter.succeeded(name);
    },
    failed: (_name, result, retryInMs) => {
      if (result.decision) reporter.decide(result.decision, retryInMs);
    },
    clock,
    settings: {
      resyncMs: config.apps.resync_s * 1000,
      deleteConfirmMs: config.apps.delete_confirm_s * 1000,
      concurrency: config.apps.concurrency,
      backoff: { initialMs: config.apps.backoff_initial_s * 1000, maxMs: config.apps.backoff_max_s * 1000, factor: 2, jitter: 0.2 },
    },
  });

  // Loaded on the first app with an env file: the secp256k1 code it needs (@noble/curves) is
  // ~3 MB of resident memory an idle host whose apps have no secrets does not carry (issue 5).
  async function sealEnv(app: string, appId: string, entries: EnvEntry[]): Promise<string> {
    const { sealEnv: seal } = await import('./secrets/seal.ts');
    return seal({ vmm, kmsPublicKeyHex: config.apps.kms_public_key, now: () => clock.now() }, app, appId, entries);
  }

  const reconcileDeps: ReconcileDeps = {
    vmm,
    allowlist,
    records,
    report: (u: StatusUpdate) => reporter.update(u),
    sealEnv,
    clock: handlerClock,
    timing,
    desired: (name) => {
      const v = controller.desired(name);
      if (v === undefined) return { kind: 'gone' };
      if (v.kind === 'app') return { kind: 'app', spec: v.spec, renamedFrom: v.renamedFrom };
      return v.kind === 'gone' ? v : { kind: 'hold', fileMissing: v.why === 'delete-pending' };
    },
    loadRecord: (name) => records.load(name),
    lastAppId: (name) => reporter.status(name)?.app_id ?? undefined,
    gatewayView: (vm) => tier2?.viewOf(vm),
    listVms: (name) => snapshot.list(name),
    vmmKmsUrls: async () => (await vmm.getMeta()).kms.urls,
    touched: (name) => snapshot.touched(name),
    decide: (d) => reporter.decide(d),
  };

  const bus = createBus();
  bus.on(BUS_EVENTS.rescan, (e) => {
    hints.add(e.names);
    controller.poke('fs-event');
  });
  bus.on(BUS_EVENTS.watcherDegraded, (e) => {
    watcherDegraded = true;
    reporter.setWatcherDegraded(true);
    log.warn({ FILE: e.dir, CODE: e.code }, `${e.reason}; resync every ${config.apps.resync_s} s until it is re-armed`);
    controller.poke('watcher-degraded');
  });
  bus.on(BUS_EVENTS.watcherArmed, () => {
    if (watcherDegraded) log.info({ FILE: config.apps_dir }, 'file watcher re-armed');
    watcherDegraded = false;
    reporter.setWatcherDegraded(false);
    controller.poke('watcher-armed');
  });

  // Tier 2 reads gateway.d on every resync; its admin client (undici) loads on the first enable.
  const { createTier2Service } = await import('./gateway/start.ts');
  tier2 = createTier2Service({
    config,
    log,
    clock: handlerClock,
    vmm,
    allowlist,
    image,
    seal: sealEnv,
    wanted: () => {
      const phases = new Map(reporter.statuses().map((s) => [s.app, s.phase]));
      return controller.verdicts().flatMap(([name, v]) => (v.kind === 'app' ? [{ name, wanted: v.spec.gatewayWanted, busy: phases.get(name) !== 'running' }] : []));
    },
    changed: () => controller.poke('manual'),
    timing: { pollMs: timing.pollMs },
  });
  await tier2.prime();
  await controller.start();
  tier2.start();
  const watcher = await watchAppsDir({ dir: config.apps_dir, bus, clock, enabled: config.apps.watch, watch: options.watchDir });
  ready = true;
  await notifier.ready(reporter.line());
  await writeSupervisor('ready');
  const stopWatchdog = startWatchdog({ notifier, env, pid: process.pid, clock });
  log.info({ FILE: config.apps_dir }, `watching ${config.apps_dir}: ${reporter.line()}`);

  return {
    vmm,
    idle: async () => {
      await controller.idle();
      await tier2?.idle();
      await controller.idle();
    },
    poke: () => controller.poke('manual'),
    async stop() {
      await notifier.stopping('stopping: running apps keep running');
      stopWatchdog();
      await watcher.close();
      const grace = options.stopGraceMs ?? 20_000;
      // The grace timer is cancelled once the controller stops: left pending it kept the process
      // alive for the whole grace after "stopped" (found by bench/restart.ts).
      const graceOver = new AbortController();
      const stopped = await Promise.race([
        controller.stop().then(() => true),
        clock.sleep(grace, graceOver.signal).then(() => false, () => false),
      ]);
      graceOver.abort();
      if (!stopped) {
        abandon.abort(new Error('the supervisor stopped while this operation waited; it resumes at the next start'));
        await controller.stop();
      }
      if (!stopped) log.warn(`in-flight operations did not finish within ${grace / 1000} s; their intent records resume them at the next start`);
      await tier2?.close();
      await supervisorWrites;
      await allowlist.close();
      await vmm.close();
    },
  };
}
