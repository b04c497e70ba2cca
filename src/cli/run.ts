import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig, type Config } from '../config.ts';
import type { Logger } from '../log/logger.ts';
import { startSupervisor } from '../supervisor.ts';
import { describeError } from '../errors.ts';
import { prepareHost } from '../init/prepare.ts';
import { parseCommand } from './args.ts';
import { COMMAND_SPECS } from './commands.ts';
import { commandLogger } from './logging.ts';
import { handleHangups, reloadService } from '../service/reload.ts';
import { pidFilePath, removePidFile, writePidFile } from '../service/pid-file.ts';
import { reportBadConfig, reportFailedStart } from '../service/failed-start.ts';
import { nameProcess } from '../service/process-name.ts';
import { createNotifier } from '../notify/notifier.ts';

// The simulated host, started in this process only when `[sim] enabled = true`. With `[init]
// enabled`, init renders auth-config.json and the VMM serves the guest images on disk.
export async function startSimulatedHost(config: Config, log: Logger): Promise<{ config: Config; stop: () => Promise<void> }> {
  const { startSimHost } = await import('../sim/host.ts');
  const { seedSimAuthConfig } = await import('../sim/seed.ts');
  const { ensureSimImages } = await import('../sim/guest-image.ts');
  const { SIM_EXTERNAL_KMS_URL } = await import('../sim/vmm-config.ts');
  const { gpuSettingsFor, simGpusOf } = await import('../sim/vm-gpus.ts');
  const gpus = simGpusOf(config.sim.gpus);
  await mkdir(config.sim.dir, { recursive: true });
  if (!config.init.enabled && (await seedSimAuthConfig(config.auth.config_path))) log.info({ FILE: config.auth.config_path }, 'simulated host: wrote a starting auth-config.json');
  // With init, the simulated VMM reads the vmm.toml init renders, as dstack-vmm does: kms_url and
  // [cvm] kms_urls name the port init picked for the KMS CVM, the port ranges (tcp and udp, so a
  // gateway CVM can map WireGuard) and bind address are init's (issue 16 item 2: GetMeta used to
  // name a hard-coded KMS URL nobody listened on). The host CA in <config_dir>/tls signs the
  // simulated gateway's certificates (`curl --cacert`). Without init nothing renders a vmm.toml
  // and no KMS CVM runs; the VMM is then configured as for a KMS elsewhere (SIM_EXTERNAL_KMS_URL),
  // with `[cvm.gpu]` as init would render it for `[sim] gpus`.
  const fromInit = config.init.enabled
    ? {
        images: await ensureSimImages(config.init.images_dir),
        vmmToml: join(config.init.config_dir, 'vmm.toml'),
        tlsDir: join(config.init.config_dir, 'tls'),
      }
    : { kmsUrl: SIM_EXTERNAL_KMS_URL, kmsUrls: [SIM_EXTERNAL_KMS_URL], settings: gpuSettingsFor(gpus) };
  const sim = await startSimHost({ dir: config.sim.dir, authConfigPath: config.auth.config_path, gpus, ...fromInit });
  log.warn({ VMM: sim.vmmUrl }, `SIMULATED HOST: dstack-vmm is simulated at ${sim.vmmUrl} ([sim] enabled = true); no CVM is real`);
  // With init, init learns the key from the KMS it deployed (a replica's is its source's, not this
  // simulated host's first one); without, the simulated KMS's is the one to trust.
  const apps = config.init.enabled ? config.apps : { ...config.apps, kms_public_key: config.apps.kms_public_key || sim.envKeys.kmsPublicKeyHex };
  // Tier 2's DNS check asks the simulated DNS server (names under the simulated gateway's domain
  // resolve to 127.0.0.1), unless [gateway] dns_servers names resolvers of its own.
  const gateway = { ...config.gateway, dns_servers: config.gateway.dns_servers.length > 0 ? config.gateway.dns_servers : [sim.dns.server] };
  return { config: { ...config, apps, gateway, vmm: { ...config.vmm, url: sim.vmmUrl, token_file: sim.tokenFile ?? '' } }, stop: sim.stop };
}

// Resolve on the first SIGTERM or SIGINT; a second one exits at once. On a real host the CVMs
// outlive the service; the simulated ones live in this process and stop with it.
function untilSignal(log: Logger, simulated: boolean): Promise<string> {
  return new Promise((resolve) => {
    const on = (signal: string) => {
      log.info(simulated ? `${signal}: stopping; the simulated CVMs stop with this process (on a real host apps keep running)` : `${signal}: stopping; running apps keep running`);
      process.removeAllListeners('SIGTERM');
      process.removeAllListeners('SIGINT');
      process.once('SIGTERM', () => process.exit(143));
      process.once('SIGINT', () => process.exit(130));
      resolve(signal);
    };
    process.once('SIGTERM', () => on('SIGTERM'));
    process.once('SIGINT', () => on('SIGINT'));
  });
}

// `dstack-supervisor run [--config FILE] [--log-format FORMAT]`: the service's entry point. SIGHUP asks for a full
// resync (src/service/reload.ts); `<state_dir>/pid.json` lets `dstack-supervisor resync` find it.
export async function run(args: string[]): Promise<number> {
  const parsed = parseCommand('run', COMMAND_SPECS.run, args);
  if (!parsed.ok) return parsed.exitCode;
  const { values } = parsed;
  nameProcess();
  const logger = commandLogger('run', COMMAND_SPECS.run, values['log-format']);
  if (!logger.ok) return logger.exitCode;
  const { log } = logger;
  const hangups = handleHangups(log);
  const status = (text: string) => createNotifier({ env: process.env, log }).status(text);
  let config: Config;
  try {
    config = await loadConfig(values.config);
  } catch (err) {
    return reportBadConfig(err, log, status);
  }
  const started = config;
  await writePidFile(started.state_dir).catch((err: unknown) =>
    log.warn({ FILE: pidFilePath(started.state_dir) }, `cannot record this process (${describeError(err)}); \`dstack-supervisor resync\` will not find it, \`systemctl reload\` still works`),
  );
  let sim: Awaited<ReturnType<typeof startSimulatedHost>> | undefined;
  try {
    if (config.sim.enabled) {
      sim = await startSimulatedHost(config, log);
      config = sim.config;
    }
    config = await prepareHost(config, log);
    const supervisor = await startSupervisor({ config, log });
    hangups.serve(() => reloadService({ configFile: values.config, started, resync: () => supervisor.poke(), log }));
    await untilSignal(log, sim !== undefined);
    hangups.stop();
    await supervisor.stop();
    log.info('stopped');
    return 0;
  } catch (err) {
    return await reportFailedStart(err, log, status);
  } finally {
    hangups.stop();
    await sim?.stop();
    await removePidFile(started.state_dir);
  }
}
