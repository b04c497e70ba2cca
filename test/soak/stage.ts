// A stage for whole-process runs (chaos soak, benchmarks): the simulated host in this process,
// a real apps.d in a temp dir, and the supervisor as a child process started with `run`, the way
// systemd starts it, so it can be killed with SIGKILL and measured on its own (RSS, CPU time).
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startSimHost, type SimHost, type SimHostOptions } from '../../src/sim/host.ts';
import { seedSimAuthConfig } from '../../src/sim/seed.ts';
import type { LogFormat } from '../../src/log/format.ts';

const BIN = join(import.meta.dirname, '../../bin/dstack-supervisor.mjs');

// How much of a child's output is kept for a failure report.
const TAIL_CHARS = 20_000;

// A TOML value for supervisor.toml; JSON strings are valid TOML basic strings.
type TomlValue = string | number | boolean;

export type StageOptions = {
  // `[apps]` keys of supervisor.toml, on top of the stage's own (paths, owner).
  apps?: Record<string, TomlValue>;
  // `[vmm]` keys, e.g. mode = "json".
  vmm?: Record<string, TomlValue>;
  sim?: Partial<SimHostOptions>;
  // Prefix of the temp dir, so a leftover one says who made it.
  prefix?: string;
};

// One run of `dstack-supervisor run` as a child process.
export type SupervisorChild = {
  pid: number;
  // Resolves with performance.now() at the journal line written right after READY=1 (the first
  // scan and plan are done); rejects if the process exits first.
  ready: Promise<number>;
  exited: Promise<number | null>;
  // The last lines it printed, for failure reports.
  tail(): string;
  // Everything it wrote to stderr: journal lines go to stdout, so this holds only what escaped
  // the logger (an uncaught exception's stack).
  stderr(): string;
  // Send `signal` (default SIGKILL) and wait for the exit.
  kill(signal?: NodeJS.Signals): Promise<void>;
};

export type SpawnOptions = {
  // Extra node flags (`--cpu-prof`, `--import probe.ts`).
  nodeArgs?: string[];
  // The program to run instead of bin/dstack-supervisor.mjs (the sources), e.g. the esbuild
  // bundle the package ships.
  bin?: string;
  env?: Record<string, string>;
  // `--log-format`; json (pino's lines, `<6>{"level":"info",…}`) unless a bench measures another.
  logFormat?: LogFormat;
  // Called with every complete output line (journald prefix included).
  onLine?: (line: string) => void;
};

export type Stage = {
  dir: string;
  appsDir: string;
  stateDir: string;
  authPath: string;
  configPath: string;
  sim: SimHost;
  spawn(options?: SpawnOptions): SupervisorChild;
  // Rewrite supervisor.toml with other `[apps]`/`[vmm]` keys; the next spawn reads it.
  reconfigure(options: Pick<StageOptions, 'apps' | 'vmm'>): Promise<void>;
  // Drop `file` into apps.d in one step (hidden temp, 0644, rename), as `install` or an
  // editor's rename-over does.
  drop(file: string, text: string): Promise<void>;
  // Drop many files at once: every temp is written first, then all are renamed in a tight loop;
  // resolves with performance.now() when the first rename began.
  dropAll(files: ReadonlyArray<readonly [string, string]>): Promise<number>;
  // The phase in app `name`'s status file, or undefined while it has none.
  phase(name: string): Promise<string | undefined>;
  // The per-phase app counts of `_supervisor.json` ({} before it is first written).
  counts(): Promise<Record<string, number>>;
  // Kill every child still running, stop the host, remove the temp dir.
  close(): Promise<void>;
};

function renderToml(top: Record<string, TomlValue>, sections: Record<string, Record<string, TomlValue>>): string {
  const lines = (entries: Record<string, TomlValue>) => Object.entries(entries).map(([k, v]) => `${k} = ${JSON.stringify(v)}`);
  return [
    ...lines(top),
    ...Object.entries(sections).flatMap(([name, entries]) => [`[${name}]`, ...lines(entries)]),
    '',
  ].join('\n');
}

// A status file as JSON, or undefined while it does not exist yet.
async function readStatus<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

// Build the stage: host up, supervisor.toml written, no supervisor running yet.
export async function openStage(options: StageOptions = {}): Promise<Stage> {
  const dir = await mkdtemp(join(tmpdir(), options.prefix ?? 'dstack-stage-'));
  const appsDir = join(dir, 'apps.d');
  const stateDir = join(dir, 'state');
  const authPath = join(dir, 'auth-config.json');
  await mkdir(appsDir, { mode: 0o755 });
  await mkdir(join(dir, 'sim'));
  await seedSimAuthConfig(authPath);
  const sim = await startSimHost({
    dir: join(dir, 'sim'),
    authConfigPath: authPath,
    bootDelayMs: 20,
    removeDelayMs: 20,
    shutdownDelayMs: 10,
    kmsUrls: ['https://10.0.2.2:12001'],
    kmsUrl: 'https://10.0.2.2:12001',
    ...options.sim,
  });
  const configPath = join(dir, 'supervisor.toml');
  const writeConfig = (next: Pick<StageOptions, 'apps' | 'vmm'>) =>
    writeFile(
      configPath,
      renderToml(
        { apps_dir: appsDir, state_dir: stateDir, gateway_dir: join(dir, 'gateway.d') },
        {
          vmm: { url: sim.vmmUrl, token_file: '', ...next.vmm },
          auth: { config_path: authPath },
          init: { enabled: false },
          apps: { owner: process.getuid?.() ?? 0, kms_public_key: sim.envKeys.kmsPublicKeyHex, ...next.apps },
        },
      ),
    );
  await writeConfig(options);
  const children = new Set<SupervisorChild>();

  const spawnChild = (spawnOptions: SpawnOptions = {}): SupervisorChild => {
    const args = ['run', '--config', configPath, '--log-format', spawnOptions.logFormat ?? 'json'];
    const child = spawn(process.execPath, [...(spawnOptions.nodeArgs ?? []), spawnOptions.bin ?? BIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NOTIFY_SOCKET: '', ...spawnOptions.env },
    });
    let tail = '';
    let partial = '';
    let markReady: (at: number) => void = () => undefined;
    const ready = new Promise<number>((resolve) => (markReady = resolve));
    // The sentence, in whichever format the lines are.
    const readyLine = `watching ${appsDir}:`;
    child.stdout.on('data', (chunk: Buffer) => {
      const text = partial + chunk.toString();
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (line.includes(readyLine)) markReady(performance.now());
        spawnOptions.onLine?.(line);
      }
      tail = (tail + chunk.toString()).slice(-TAIL_CHARS);
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-TAIL_CHARS);
      tail = (tail + chunk.toString()).slice(-TAIL_CHARS);
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const handle: SupervisorChild = {
      pid: child.pid ?? -1,
      ready: Promise.race([
        ready,
        exited.then((code) => Promise.reject(new Error(`supervisor exited (code ${code}) before READY:\n${tail}`))),
      ]),
      exited,
      tail: () => tail,
      stderr: () => stderr,
      async kill(signal = 'SIGKILL') {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        await exited;
      },
    };
    // A caller that never awaits `ready` must not see an unhandled rejection.
    handle.ready.catch(() => undefined);
    children.add(handle);
    void exited.then(() => children.delete(handle));
    return handle;
  };

  return {
    dir,
    appsDir,
    stateDir,
    authPath,
    configPath,
    sim,
    spawn: spawnChild,
    reconfigure: writeConfig,
    async drop(file, text) {
      const temp = join(appsDir, `.${file}.drop`);
      await writeFile(temp, text, { mode: 0o644 });
      await rename(temp, join(appsDir, file));
    },
    async dropAll(files) {
      for (const [file, text] of files) await writeFile(join(appsDir, `.${file}.drop`), text, { mode: 0o644 });
      const started = performance.now();
      for (const [file] of files) await rename(join(appsDir, `.${file}.drop`), join(appsDir, file));
      return started;
    },
    phase: async (name) => (await readStatus<{ phase?: string }>(join(stateDir, 'status', `${name}.json`)))?.phase,
    counts: async () => (await readStatus<{ counts?: Record<string, number> }>(join(stateDir, 'status', '_supervisor.json')))?.counts ?? {},
    async close() {
      await Promise.all([...children].map((c) => c.kill()));
      await sim.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
