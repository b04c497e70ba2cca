// Init and destroy as the commands run them: the edges built from supervisor.toml (systemd on
// the system bus and the configured VMM, or with `[sim] enabled = true` the in-process systemd
// and a fake sysroot), and STATUS= through sd_notify.
import { join } from 'node:path';
import type { Config } from '../config.ts';
import type { Logger } from '../log/logger.ts';
import { createNotifier } from '../notify/notifier.ts';
import { connectSystemd } from '../systemd/manager.ts';
import type { SystemdManager } from '../systemd/types.ts';
import { createVmmClient, type VmmClient } from '../vmm/client.ts';
import { destroyHost, type DestroyResult } from './destroy.ts';
import { PreflightError } from './errors.ts';
import { readVmLogTail } from '../vmm/vm-logs.ts';
import { findHostProblems, systemdUnreachable } from './preflight.ts';
import { runInit, type InitDeps, type InitResult } from './run-init.ts';
import { HOST_UNITS } from './units.ts';

// systemd, the VMM and its logs, as one closable bundle.
export type HostEdges = { systemd: SystemdManager; vmm: VmmClient; vmLogs: (id: string) => Promise<string[]>; close: () => Promise<void> };

// Connect to what `config` names. The simulated systemd is chosen only by `[sim] enabled`.
export async function connectHostEdges(config: Config): Promise<HostEdges> {
  const tokenFile = config.vmm.token_file === '' ? undefined : config.vmm.token_file;
  const vmm = createVmmClient({ url: config.vmm.url, tokenFile, mode: config.vmm.mode, timeoutMs: config.vmm.timeout_ms });
  const vmLogs = (id: string): Promise<string[]> => readVmLogTail(config.vmm.url, tokenFile, id);
  if (!config.sim.enabled) {
    const systemd = await connectSystemd();
    return { systemd, vmm, vmLogs, close: async () => void (await Promise.all([systemd.close(), vmm.close()])) };
  }
  const { FakeSystemd } = await import('../sim/systemd-model.ts');
  const { createSimSystemd } = await import('../sim/systemd-inprocess.ts');
  const model = new FakeSystemd(Object.fromEntries(HOST_UNITS.map((unit) => [unit, {}])));
  const systemd = createSimSystemd(model);
  return {
    systemd,
    vmm,
    vmLogs,
    close: async () => {
      await Promise.all([systemd.close(), vmm.close()]);
      model.shutdown();
    },
  };
}

// A simulated host answers in milliseconds: poll it often, so `npm run dev` is quick.
const SIM_POLL_MS = 50;

// Run init for `config`. A simulated host whose `[init] sysroot` is the real root gets a fake
// sysroot under `[sim] dir`, so the preflight never judges this machine for a simulated one.
export async function initHost(config: Config, log: Logger, extra: Partial<InitDeps> = {}): Promise<InitResult> {
  let effective = config;
  const timing = config.sim.enabled ? { pollMs: SIM_POLL_MS } : {};
  if (config.sim.enabled && config.init.sysroot === '/') {
    const { buildFakeSysroot, platformFeatures } = await import('../sim/sysroot.ts');
    const { simGpusOf } = await import('../sim/vm-gpus.ts');
    const sysroot = await buildFakeSysroot(join(config.sim.dir, 'sysroot'), config.init, { ...platformFeatures(config.init.platform), gpus: simGpusOf(config.sim.gpus) });
    log.warn({ SYSROOT: sysroot }, `simulated host: the preflight reads the fake host in ${sysroot}`);
    effective = { ...config, init: { ...config.init, sysroot } };
  }
  const notifier = createNotifier({ env: process.env, log });
  // The preflight comes before any edge is touched: a host without a system bus gets the list
  // of its problems, that one among them, not a D-Bus error alone.
  const preflight = await findHostProblems(effective.init);
  const edges = await connectHostEdges(effective).catch((err: unknown) => {
    preflight.push(systemdUnreachable(err));
    return undefined;
  });
  if (edges === undefined || preflight.length > 0) {
    await edges?.close();
    throw new PreflightError(preflight, effective.init.sysroot);
  }
  try {
    return await runInit({ config: effective, systemd: edges.systemd, vmm: edges.vmm, vmLogs: edges.vmLogs, log, status: (text) => void notifier.status(text), timing, preflight, ...extra });
  } finally {
    await edges.close();
  }
}

// Run destroy for `config`.
export async function destroyFromConfig(config: Config, log: Logger, options: { purge: boolean }): Promise<DestroyResult> {
  const edges = await connectHostEdges(config);
  try {
    return await destroyHost({ config, systemd: edges.systemd, vmm: edges.vmm, log }, options);
  } finally {
    await edges.close();
  }
}
