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

// The simulated host, started in this process only when `[sim] enabled = true`. With `[init]
// enabled`, init renders auth-config.json and the VMM serves the guest images on disk.
export async function startSimulatedHost(config: Config, log: Logger): Promise<{ config: Config; stop: () => Promise<void> }> {
  const { startSimHost } = await import('../sim/host.ts');
  const { seedSimAuthConfig } = await import('../sim/seed.ts');
  const { ensureSimImages } = await import('../sim/guest-image.ts');
  await mkdir(config.sim.dir, { recursive: true });
  if (!config.init.enabled && (await seedSimAuthConfig(config.auth.config_path))) log.info({ FILE: config.auth.config_path }, 'simulated host: wrote a starting auth-config.json');
  // With init, the simulated VMM is configured as init renders vmm.toml: its port ranges (tcp and
  // udp, so a gateway CVM can map WireGuard) and bind address, and the host CA in
  // <config_dir>/tls that signs the simulated gateway's certificates (`curl --cacert`).
  const fromInit = config.init.enabled
    ? {
        images: await ensureSimImages(config.init.images_dir),
        portMapping: { enabled: true, address: config.init.port_mapping_address, range: config.init.port_ranges.map((r) => ({ ...r })) },
        tlsDir: join(config.init.config_dir, 'tls'),
      }
    : {};
  const kmsUrl = 'https://10.0.2.2:12001';
  const sim = await startSimHost({ dir: config.sim.dir, authConfigPath: config.auth.config_path, kmsUrls: [kmsUrl], kmsUrl, ...fromInit });
  log.warn({ VMM: sim.vmmUrl }, `SIMULATED HOST: dstack-vmm is simulated at ${sim.vmmUrl} ([sim] enabled = true); no CVM is real`);
  const apps = { ...config.apps, kms_public_key: config.apps.kms_public_key || sim.envKeys.kmsPublicKeyHex };
  return { config: { ...config, apps, vmm: { ...config.vmm, url: sim.vmmUrl, token_file: sim.tokenFile ?? '' } }, stop: sim.stop };
}

// Resolve on the first SIGTERM or SIGINT; a second one exits at once.
function untilSignal(log: Logger): Promise<string> {
  return new Promise((resolve) => {
    const on = (signal: string) => {
      log.info(`${signal}: stopping; running apps keep running`);
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
  const logger = commandLogger('run', COMMAND_SPECS.run, values['log-format']);
  if (!logger.ok) return logger.exitCode;
  const { log } = logger;
  const hangups = handleHangups(log);
  let config: Config;
  try {
    config = await loadConfig(values.config);
  } catch (err) {
    log.error(describeError(err));
    return 1;
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
    await untilSignal(log);
    hangups.stop();
    await supervisor.stop();
    log.info('stopped');
    return 0;
  } catch (err) {
    log.error({ err }, describeError(err));
    return 1;
  } finally {
    hangups.stop();
    await sim?.stop();
    await removePidFile(started.state_dir);
  }
}
