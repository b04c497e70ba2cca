// An end-to-end stage for docs/apps-dir.md rule tests: a simulated host on a real unix socket, a real
// apps.d in a temp dir, and the supervisor itself, in this process, with fast timings.
import { mkdtemp, mkdir, rm, writeFile, chmod, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer, type Server, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { ConfigSchema, type Config } from '../../src/config.ts';
import { createLogger } from '../../src/log/logger.ts';
import { startSupervisor, type Supervisor } from '../../src/supervisor.ts';
import type { WatchDir } from '../../watchers/apps.ts';
import { startSimHost, type SimHost, type SimHostOptions } from '../../src/sim/host.ts';
import { seedSimAuthConfig } from '../../src/sim/seed.ts';
import { readAllStatuses, readSupervisorStatus } from '../../src/status/store.ts';
import type { AppStatus, SupervisorStatus } from '../../src/status/schema.ts';
import type { VmInfo } from '../../src/vmm/messages.ts';
import { collectLines, type LogLine } from '../log/collect.ts';
import { freePort } from '../sim/fixtures.ts';
import { defer } from './cleanup.ts';

export { freePort };

const MUTATING = new Set(['CreateVm', 'UpdateVm', 'StartVm', 'StopVm', 'ShutdownVm', 'RemoveVm']);

type TestContext = { after: (fn: () => unknown) => void };

export type Harness = {
  dir: string;
  appsDir: string;
  config: Config;
  sim: SimHost;
  logs: LogLine[];
  supervisor(): Supervisor;
  // Write an app file the way an operator's `cp` would (root-owned, 0644).
  put(file: string, text: string): Promise<void>;
  // Start (or start again) the supervisor.
  start(): Promise<Supervisor>;
  stop(): Promise<void>;
  // Wait until the supervisor has nothing to do and the VMs satisfy `predicate`.
  until(predicate: (vms: VmInfo[]) => boolean, what: string, timeoutMs?: number): Promise<VmInfo[]>;
  quiesce(): Promise<void>;
  statuses(): Promise<AppStatus[]>;
  allowlist(): Promise<Record<string, { composeHashes: string[] }>>;
  // Every mutating prpc call the simulated VMM has received, in order.
  mutations(): string[];
  // The path of `file` inside apps.d.
  path(file: string): string;
  // Wait until app `name` runs `text` (its file's content, when given) on a booted VM and its
  // status says running, then until the supervisor is idle; resolves with that VM.
  deployed(name: string, text?: string): Promise<VmInfo>;
  // Drop a new app and wait until it runs. Every change made to apps.d before the call has then
  // been settled and acted on (or deliberately not): the positive signal "nothing happened"
  // assertions wait for. Its own deploy adds one CreateVm to mutations().
  checkpoint(): Promise<void>;
  // The journal's decision lines (rule 22) about `app`, optionally only those of one ACTION.
  decisions(app: string, action?: string): LogLine[];
  // `_supervisor.json`: lifecycle, watcher health and counts.
  supervisorStatus(): Promise<SupervisorStatus | null>;
};

export type HarnessOptions = {
  apps?: Partial<Config['apps']>;
  sim?: Partial<SimHostOptions>;
  // The supervisor's environment (NOTIFY_SOCKET for sd_notify tests).
  env?: Record<string, string>;
  // How the supervisor starts apps.d's inotify watch (to inject inotify faults).
  watchDir?: WatchDir;
};

// A compose file publishing `port`, with a marker so each version has its own hash.
export function composeText(port: number, marker = 'v1'): string {
  return `# ${marker}\nservices:\n  web:\n    image: nginx:1.27\n    ports:\n      - "${port}:80"\n`;
}

// The compose file text a VM was deployed with (its app-compose manifest's docker_compose_file).
export function composeOf(vm: VmInfo): string | undefined {
  const manifest = vm.configuration?.compose_file;
  return manifest === undefined ? undefined : (JSON.parse(manifest) as { docker_compose_file?: string }).docker_compose_file;
}

// Host ports no other process holds right now: the simulated VMM binds every forwarded port for
// real, and test files run side by side, so fixed port numbers would collide.
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<Server>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve(server));
    })),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

// Poll `check` every 10 ms until it holds; the failure names what was awaited.
export async function waitUntil<T>(check: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// Whether `promise` has settled once the work now due has run (a few turns of the event loop): for
// checking that something is still held while nothing could release it.
export async function settledSoon(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(() => (done = true));
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return done;
}

// Build the stage; everything is torn down when the test ends.
export async function startHarness(t: TestContext, options: HarnessOptions = {}): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'dstack-sup-'));
  const appsDir = join(dir, 'apps.d');
  await mkdir(appsDir, { mode: 0o755 });
  await mkdir(join(dir, 'sim'));
  const authPath = join(dir, 'auth-config.json');
  await seedSimAuthConfig(authPath);
  const sim = await startSimHost({ dir: join(dir, 'sim'), authConfigPath: authPath, bootDelayMs: 20, removeDelayMs: 20, shutdownDelayMs: 10, kmsUrls: ['https://10.0.2.2:12001'], kmsUrl: 'https://10.0.2.2:12001', ...options.sim });
  // Registered before anything else can throw, so a failed setup never leaves a server running.
  let running: Supervisor | undefined;
  defer(t, () => rm(dir, { recursive: true, force: true }));
  defer(t, () => sim.stop());
  defer(t, () => running?.stop());
  const config = ConfigSchema.parse({
    apps_dir: appsDir,
    gateway_dir: join(dir, 'gateway.d'),
    state_dir: join(dir, 'state'),
    vmm: { url: sim.vmmUrl, token_file: '' },
    auth: { config_path: authPath },
    init: { enabled: false },
    // Tier 2's DNS check asks the simulated host's DNS server, as `npm run dev` does.
    gateway: { dns_servers: [sim.dns.server] },
    apps: { kms_public_key: sim.envKeys.kmsPublicKeyHex, settle_ms: 100, resync_s: 2, delete_confirm_s: 0.3, owner: process.getuid?.() ?? 0, backoff_initial_s: 1, backoff_max_s: 2, boot_timeout_s: 10, shutdown_timeout_s: 2, ...options.apps },
  });
  const collected = collectLines();
  let checkpoints = 0;
  const h: Harness = {
    dir,
    appsDir,
    config,
    sim,
    logs: collected.lines,
    supervisor: () => {
      if (!running) throw new Error('supervisor not started');
      return running;
    },
    async put(file, text) {
      const path = join(appsDir, file);
      await writeFile(path, text);
      await chmod(path, 0o644);
    },
    async start() {
      running = await startSupervisor({
        config,
        log: createLogger({ level: 'debug', stream: collected.stream }),
        env: options.env ?? {},
        pollMs: 10,
        stopGraceMs: 1000,
        watchDir: options.watchDir,
      });
      return running;
    },
    async stop() {
      await running?.stop();
      running = undefined;
    },
    async until(predicate, what, timeoutMs = 10_000) {
      return waitUntil(() => {
        const vms = sim.state.list();
        return predicate(vms) ? vms : undefined;
      }, what, timeoutMs);
    },
    async quiesce() {
      await running?.idle();
    },
    async statuses() {
      return (await readAllStatuses(config.state_dir)).apps;
    },
    async allowlist() {
      return JSON.parse(await readFile(authPath, 'utf8')).apps;
    },
    mutations: () => sim.faults.calls().filter((m) => MUTATING.has(m)),
    path: (file) => join(appsDir, file),
    async deployed(name, text) {
      const booted = (v: VmInfo) => v.name === name && v.status === 'running' && v.boot_progress === 'done' && (text === undefined || composeOf(v) === text);
      const vms = await h.until((list) => list.some(booted), `${name} running${text === undefined ? '' : ' the expected content'}`);
      const vm = vms.find(booted) as VmInfo;
      const hash = createHash('sha256').update(vm.configuration?.compose_file ?? '').digest('hex');
      await waitUntil(async () => (await h.statuses()).some((s) => s.app === name && s.phase === 'running' && s.vm_id === vm.id && s.compose_hash === hash), `${name} status running`);
      await h.quiesce();
      return vm;
    },
    async checkpoint() {
      checkpoints += 1;
      const name = `checkpoint-${checkpoints}`;
      const text = composeText(await freePort(), name);
      await h.put(`${name}.yml`, text);
      await h.deployed(name, text);
    },
    decisions: (app, action) => collected.lines.filter((l) => l.fields.APP === app && l.fields.ACTION !== undefined && (action === undefined || l.fields.ACTION === action)),
    supervisorStatus: () => readSupervisorStatus(config.state_dir),
  };
  return h;
}
