// An init stage: a temp dir holding a fake sysroot, a guest image and every path init writes,
// a simulated host (VMM, webhook, KMS) on a unix socket in it, and the in-process systemd (or,
// with `bus`, the fake systemd on a private dbus-daemon). Everything stops when the test ends.
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { ConfigSchema, type Config } from '../../src/config.ts';
import { readVmLogTail } from '../../src/vmm/vm-logs.ts';
import { runInit, type InitDeps, type InitResult } from '../../src/init/run-init.ts';
import { HOST_UNITS } from '../../src/init/units.ts';
import { createLogger } from '../../src/log/logger.ts';
import { writeFakeGuestImage } from '../../src/sim/guest-image.ts';
import type { SimImage } from '../../src/sim/vmm-config.ts';
import { startSimHost, type SimHost, type SimHostOptions } from '../../src/sim/host.ts';
import { buildFakeSysroot, type SysrootFeatures } from '../../src/sim/sysroot.ts';
import { createSimSystemd } from '../../src/sim/systemd-inprocess.ts';
import { FakeSystemd, type FakeUnitBehaviour } from '../../src/sim/systemd-model.ts';
import type { SystemdManager } from '../../src/systemd/types.ts';
import { createVmmClient, type VmmClient } from '../../src/vmm/client.ts';
import { collectLines, type LogLine } from '../log/collect.ts';
import { freePort } from '../sim/fixtures.ts';
import { startFakeHost } from '../systemd/fixture.ts';
import { initIn, tempDir } from './helpers.ts';
import { defer } from '../helpers/cleanup.ts';

export type StageOptions = {
  sysroot?: SysrootFeatures;
  // Extra `[init]` keys (e.g. platform).
  init?: Record<string, unknown>;
  units?: Record<string, FakeUnitBehaviour>;
  sim?: Partial<SimHostOptions>;
  // Drive the fake systemd over a real private dbus-daemon instead of in-process.
  bus?: boolean;
  // Init as on a real host ([sim] off): the guest image then carries no simulated_by mark, or
  // init would refuse it; the simulated VMM serves it all the same.
  realHost?: boolean;
};

export type Stage = {
  root: string;
  config: Config;
  sim: SimHost;
  model: FakeSystemd;
  systemd: SystemdManager;
  vmm: VmmClient;
  logs: LogLine[];
  statuses: string[];
  kmsPort: number;
  // Run init with the stage's edges; `extra` overrides deps.
  init: (extra?: Partial<InitDeps>) => Promise<InitResult>;
  // Mutating prpc calls the simulated VMM received so far.
  mutations: () => string[];
  // Messages of the log lines at warn level.
  warnings: () => string[];
};

const MUTATING = new Set(['CreateVm', 'UpdateVm', 'StartVm', 'StopVm', 'ShutdownVm', 'RemoveVm']);

// Build the stage (nothing written under `root` yet except the sysroot and the image).
export async function startInitStage(t: TestContext, options: StageOptions = {}): Promise<Stage> {
  const root = await tempDir(t, 'dstack-initrun-');
  const kmsPort = await freePort();
  const init = initIn(root, { kms_port: kmsPort, ...options.init });
  await buildFakeSysroot(init.sysroot, init, options.sysroot);
  const image = options.realHost ? await unmark(await writeFakeGuestImage(init.images_dir), init.images_dir) : await writeFakeGuestImage(init.images_dir);
  const authConfigPath = join(root, 'etc', 'auth-config.json');
  const sim = await startSimHost({
    dir: root,
    authConfigPath,
    images: [image],
    bootDelayMs: 20,
    removeDelayMs: 20,
    shutdownDelayMs: 10,
    kmsBootstrapDelayMs: 30,
    ...options.sim,
  });
  defer(t, () => sim.stop());
  const config = ConfigSchema.parse({
    apps_dir: join(root, 'apps.d'),
    state_dir: join(root, 'state'),
    vmm: { url: sim.vmmUrl, token_file: '', mode: 'json' },
    auth: { config_path: authConfigPath },
    init,
    // The host is the simulated one (init takes its stand-in guest image), unless told otherwise.
    sim: { enabled: options.realHost !== true, dir: join(root, 'sim') },
  });
  const units = options.units ?? Object.fromEntries(HOST_UNITS.map((u) => [u, {}]));
  let model: FakeSystemd;
  let systemd: SystemdManager;
  if (options.bus === true) {
    ({ model, systemd } = await startFakeHost(t, units));
  } else {
    model = new FakeSystemd(units);
    systemd = createSimSystemd(model, { timeoutMs: 5_000 });
    defer(t, () => model.shutdown());
  }
  const vmm = createVmmClient({ url: sim.vmmUrl, mode: 'json' });
  defer(t, () => vmm.close());
  const collected = collectLines();
  const log = createLogger({ level: 'info', stream: collected.stream });
  const statuses: string[] = [];
  return {
    root,
    config,
    sim,
    model,
    systemd,
    vmm,
    logs: collected.lines,
    statuses,
    kmsPort,
    init: (extra = {}) =>
      runInit({
        config,
        systemd,
        vmm,
        vmLogs: (id) => readVmLogTail(sim.vmmUrl, undefined, id),
        log,
        status: (text) => statuses.push(text),
        timing: { kmsTimeoutMs: 5_000, vmmTimeoutMs: 2_000, pollMs: 10 },
        tls: { hostname: 'dstack-test' },
        ...extra,
      }),
    mutations: () => sim.faults.calls().filter((m) => MUTATING.has(m)),
    warnings: () => collected.lines.filter((l) => l.priority === 4).map((l) => String(l.fields['msg'])),
  };
}

// The image without its simulated_by mark, its checksums and digest made anew, as a real release's.
async function unmark(image: SimImage, imagesDir: string): Promise<SimImage> {
  const dir = join(imagesDir, image.name);
  const files = ['metadata.json', 'bzImage', 'initramfs.cpio.gz'];
  const metadata = JSON.parse(await readFile(join(dir, 'metadata.json'), 'utf8')) as Record<string, unknown>;
  delete metadata['simulated_by'];
  await writeFile(join(dir, 'metadata.json'), `${JSON.stringify(metadata)}\n`);
  const sha = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
  const sums = (await Promise.all(files.map(async (f) => `${sha(await readFile(join(dir, f)))}  ${f}\n`))).join('');
  await writeFile(join(dir, 'sha256sum.txt'), sums);
  await writeFile(join(dir, 'digest.txt'), `${sha(sums)}\n`);
  return { ...image, digest: sha(sums) };
}
