import { createConnection } from 'node:net';
import { join } from 'node:path';
import { loadConfig, type Config } from '../config.ts';
import { describeError } from '../errors.ts';
import { initHost } from '../init/command.ts';
import type { Logger } from '../log/logger.ts';
import { startSimulatedHost } from './run.ts';
import { parseCommand } from './args.ts';
import { COMMAND_SPECS } from './commands.ts';
import { commandLogger } from './logging.ts';

// The simulated host for a one-shot command: the one `run`/`npm run dev` serves in another
// process when its socket answers (its VMs live there), else one started here for this command.
async function attachSimulatedHost(config: Config, log: Logger): Promise<{ config: Config; stop: () => Promise<void> }> {
  const socketPath = join(config.sim.dir, 'vmm.sock');
  const live = await new Promise<boolean>((resolve) => {
    const socket = createConnection(socketPath, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
  if (!live) return startSimulatedHost(config, log);
  log.warn({ VMM: `unix:${socketPath}` }, `SIMULATED HOST: using the simulated dstack-vmm another process serves at unix:${socketPath}`);
  return { config: { ...config, vmm: { ...config.vmm, url: `unix:${socketPath}`, token_file: '' } }, stop: async () => {} };
}

// Run a one-shot host command (init, destroy) with its --config and --log-format: load
// supervisor.toml, attach the simulated host when `[sim]` says so, run `body` and print the line
// it returns; on failure print the error as `dstack-supervisor <command>: <message>`. Returns
// the exit code.
export async function runHostCommand(
  command: 'init' | 'destroy',
  options: { config: string | undefined; 'log-format': string | undefined },
  body: (config: Config, log: Logger) => Promise<string>,
): Promise<number> {
  const logger = commandLogger(command, COMMAND_SPECS[command], options['log-format']);
  if (!logger.ok) return logger.exitCode;
  const { log } = logger;
  let sim: Awaited<ReturnType<typeof attachSimulatedHost>> | undefined;
  try {
    let config = await loadConfig(options.config);
    if (config.sim.enabled) {
      sim = await attachSimulatedHost(config, log);
      config = sim.config;
    }
    process.stdout.write(`${await body(config, log)}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`dstack-supervisor ${command}: ${describeError(err)}\n`);
    return 1;
  } finally {
    await sim?.stop();
  }
}

// `dstack-supervisor init [--config FILE] [--log-format FORMAT]`: initialise the host now
// (idempotent); exit 1 with the step's message when something is missing or fails.
export async function run(args: string[]): Promise<number> {
  const parsed = parseCommand('init', COMMAND_SPECS.init, args);
  if (!parsed.ok) return parsed.exitCode;
  return runHostCommand('init', parsed.values, async (config, log) => {
    const result = await initHost(config, log);
    return `init complete: KMS CVM ${result.kms.vmId} at ${result.kms.url}; ${result.written.length} file(s) written, ${result.started.length} unit(s) started`;
  });
}
