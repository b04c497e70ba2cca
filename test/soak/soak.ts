// The chaos soak: play a seeded op list against a real supervisor process on a simulated host,
// check the invariants at every `check` op (check.ts), and on a failure shrink the op list to the
// shortest one found that still fails the same way, for the report.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePorts } from '../helpers/harness.ts';
import { readAllStatuses } from '../../src/status/store.ts';
import { applyOp, type ApplyContext } from './apply.ts';
import { startAuthReader } from './auth-reader.ts';
import { note, openWindow } from './calls.ts';
import { runCheck } from './check.ts';
import { generateOps } from './generate.ts';
import { deployablePort } from './manifest.ts';
import { categoryOf, type History } from './oracle.ts';
import { describeOp, PORT_SLOTS, prng, type Op } from './ops.ts';
import { openStage, type Stage, type SupervisorChild } from './stage.ts';

// supervisor.toml [apps]: docs/apps-dir.md timings scaled down (Q = 50 ms, R = 1 s, T = 0.2 s) so a
// convergence takes seconds.
const SOAK_APPS = {
  settle_ms: 50,
  resync_s: 1,
  delete_confirm_s: 0.2,
  backoff_initial_s: 1,
  backoff_max_s: 1,
  boot_timeout_s: 10,
  shutdown_timeout_s: 2,
};

// The quiet window after each convergence: two resync periods.
const QUIET_MS = 2 * SOAK_APPS.resync_s * 1000;

// systemd's Restart=on-failure, with RestartSec scaled down like the rest.
const RESTART_SEC_MS = 200;
// A SIGTERM stop must end within the stop grace (20 s) plus start-up slack.
const STOP_LIMIT_MS = 25_000;

export type SoakOptions = {
  ops: number;
  seed: number;
  // About one check per this many ops.
  checkEvery?: number;
  // How long one convergence may take before the check fails.
  convergeTimeoutMs?: number;
  // Time allowed for shrinking a failure (0: report the failing prefix as it is).
  shrinkBudgetMs?: number;
  progress?: (line: string) => void;
};

// What one execution of an op list found.
type Execution = {
  // `log`: the supervisor's last warnings and errors, and its last lines.
  failure?: { atOp: number; violations: string[]; log: string };
  checks: number;
  kills: number;
  selfExits: number;
  authReads: number;
  authWrites: number;
  slowestStopMs: number;
  // Deployable apps whose VM's manifest hash the oracle's own builder matched, over all checks.
  crossChecked: number;
  // VMM calls the supervisor made in the run.
  vmmCalls: number;
};

export type SoakReport = Omit<Execution, 'failure'> & {
  seed: number;
  // As asked for, and as played (with the checks and the closing ops that make every file valid).
  requestedOps: number;
  ops: number;
  durationMs: number;
  // `reproducerViolations`: what the shortest reproducing sequence failed with.
  failure?: { atOp: number; violations: string[]; log: string; reproducer: string[]; reproduced: boolean; shrinkAttempts: number; reproducerViolations: string[] };
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Executions in this process so far (each gets its own loopback address).
let executions = 0;

// What the VMM and the status files say, for a failure report.
async function describeState(stage: Stage): Promise<string[]> {
  const vms = stage.sim.state.list().map((v) => {
    const last = v.events.at(-1);
    const ports = (v.configuration?.ports ?? []).map((p) => `${p.protocol}/${p.host_port}`).join(',') || 'none';
    return `vm ${v.name} ${v.id} ${v.status} ports ${ports} boot "${v.boot_progress}" ${v.boot_error} app ${v.app_id.slice(0, 12)} last event ${last?.event}: ${last?.body}`;
  });
  const statuses = (await readAllStatuses(stage.stateDir)).apps.map((a) => `status ${a.app} ${a.phase} vm ${a.vm_id} ${a.last_error ?? ''}`);
  const recordsDir = join(stage.stateDir, 'apps');
  const records = await Promise.all(
    (await readdir(recordsDir).catch(() => [] as string[])).map(async (f) => `record ${f} ${await readFile(join(recordsDir, f), 'utf8').catch((e: Error) => e.message)}`),
  );
  const allowlist = `allowlist ${await readFile(stage.authPath, 'utf8').catch((e: Error) => e.message)}`;
  return ['(state)', ...vms, ...statuses, ...records, allowlist.replace(/\s+/g, ' ')];
}

// The supervisor process as systemd would keep it: restarted after it exits on its own.
function keepSupervisor(stage: Stage, onSelfExit: (child: SupervisorChild, code: number | null) => void) {
  let child = stage.spawn();
  const stopped = new WeakSet<SupervisorChild>();
  const watch = (c: SupervisorChild) =>
    void c.exited.then(async (code) => {
      if (stopped.has(c)) return;
      onSelfExit(c, code);
      await sleep(RESTART_SEC_MS);
      if (stopped.has(c)) return;
      child = stage.spawn();
      watch(child);
    });
  watch(child);
  return {
    current: () => child,
    // Kill with `signal`, then start again; resolves with how long the old process took to exit.
    async restart(signal: 'SIGKILL' | 'SIGTERM'): Promise<number> {
      const old = child;
      stopped.add(old);
      const t0 = Date.now();
      await old.kill(signal);
      const took = Date.now() - t0;
      child = stage.spawn();
      watch(child);
      return took;
    },
    async stop() {
      stopped.add(child);
      await child.kill();
    },
  };
}

// Play `ops` on a fresh stage; stops at the first failed check.
async function execute(ops: readonly Op[], options: Required<Pick<SoakOptions, 'convergeTimeoutMs' | 'seed'>> & Pick<SoakOptions, 'progress'>): Promise<Execution> {
  // Apps publish on a loopback address of their own: on 127.0.0.1 a port of ours could be taken
  // meanwhile as the local end of some outgoing connection (they come from the same ephemeral
  // range freePorts draws from), and the VM's launch then fails for a reason outside the test.
  // The address is no part of the op sequence; the pid is mixed in so that two runs of one seed
  // side by side (npm test and npm run soak) do not share it.
  const random = prng(options.seed ^ (process.pid << 8) ^ executions++);
  const byte = (n: number) => Math.floor(random() * n);
  const portAddress = `127.${1 + byte(254)}.${byte(256)}.${1 + byte(254)}`;
  const stage = await openStage({ apps: { ...SOAK_APPS, port_address: portAddress }, prefix: 'dstack-soak-' });
  const reader = startAuthReader(stage.authPath);
  const history: History = { texts: new Map(), envKeys: new Map() };
  const foreign = new Map<string, unknown>();
  let window = openWindow(0, new Map());
  const stats: Execution = { checks: 0, kills: 0, selfExits: 0, authReads: 0, authWrites: 0, slowestStopMs: 0, crossChecked: 0, vmmCalls: 0 };
  const problems: string[] = [];
  const remember = (map: Map<string, Set<string>>, name: string, value: string) => map.set(name, new Set([...(map.get(name) ?? []), value]));
  const supervisor = keepSupervisor(stage, (child, code) => {
    stats.selfExits += 1;
    window.restarts += 1;
    // Journal lines go to stdout; anything on stderr escaped the logger: a crash, not a planned exit.
    if (child.stderr().trim() !== '') problems.push(`crash: the supervisor exited (code ${code}) with ${child.stderr().trim().slice(-2000)}`);
  });
  try {
    const ctx: ApplyContext = {
      stage,
      ports: await freePorts(PORT_SLOTS),
      restart: async (signal) => {
        stats.kills += 1;
        window.restarts += 1;
        const tookMs = await supervisor.restart(signal);
        if (signal === 'SIGTERM') stats.slowestStopMs = Math.max(stats.slowestStopMs, tookMs);
        if (signal === 'SIGTERM' && tookMs > STOP_LIMIT_MS) problems.push(`slow-stop: SIGTERM took ${tookMs} ms`);
      },
      wrote: (name, text) => {
        if (deployablePort(text) !== undefined) remember(history.texts, name, text);
      },
      wroteEnv: (name, keys) => remember(history.envKeys, name, [...keys].sort().join(',')),
      touched: (name, reason) => note(window, name, reason),
      vmmRestarted: () => void (window.vmmRestarts += 1),
      foreign: (id, entry) => (entry === undefined ? foreign.delete(id) : foreign.set(id, entry)),
    };
    for (const [i, op] of ops.entries()) {
      if (op.kind !== 'check') {
        await applyOp(op, ctx);
        // A few ms between ops, different each time, so kills and edits land at varied instants.
        await sleep((i * 7919) % 23);
        continue;
      }
      stats.checks += 1;
      const checkStarted = Date.now();
      const extra = () => [...problems, ...reader.stats().invalid.map((r) => `torn-read: auth-config.json read as ${r.problem}`)];
      const result = await runCheck({ stage, history, foreign, window, extra, authWrites: () => reader.stats().writes }, options.convergeTimeoutMs, QUIET_MS);
      const { violations } = result;
      stats.crossChecked += result.crossChecked;
      window = openWindow(stage.sim.faults.callLog().length, result.vms, result.waiting);
      options.progress?.(`op ${i + 1}/${ops.length}: check ${stats.checks} ${violations.length === 0 ? 'ok' : 'FAILED'} after ${Date.now() - checkStarted} ms`);
      if (violations.length > 0) {
        const lines = supervisor.current().tail().split('\n');
        const problemsLogged = lines.filter((l) => /^<[0-4]>/.test(l)).slice(-12);
        const log = [...problemsLogged, '…', ...lines.slice(-8), ...(await describeState(stage))].join('\n');
        return { ...stats, authReads: reader.stats().reads, authWrites: reader.stats().writes, vmmCalls: stage.sim.faults.callLog().length, failure: { atOp: i, violations, log } };
      }
    }
    return stats;
  } finally {
    const { reads, writes } = reader.stats();
    stats.authReads = reads;
    stats.authWrites = writes;
    stats.vmmCalls = stage.sim.faults.callLog().length;
    await supervisor.stop();
    await reader.close();
    await stage.close();
  }
}

// What a shrunk run must fail with: the category of the first violation (call-log violations come
// first, being final), a loop seen in the quiet window and one counted in the call log being one.
const familyOf = (violation: string) => (categoryOf(violation) === 'loop' ? 'restart-loop' : categoryOf(violation));

// Delta debugging (ddmin, complements only): drop chunks of the op list while the run still fails
// with a violation of the same family; ends when no single chunk can go or the budget is spent.
async function shrink(
  ops: readonly Op[],
  family: string,
  budgetMs: number,
  run: (ops: readonly Op[]) => Promise<Execution>,
): Promise<{ ops: readonly Op[]; reproduced: boolean; attempts: number; violations: string[] }> {
  const deadline = Date.now() + budgetMs;
  const withCheck = (list: readonly Op[]) => [...list.filter((o) => o.kind !== 'check'), { kind: 'check' } as Op];
  let violations: string[] = [];
  const fails = async (list: readonly Op[]) => {
    const failure = (await run(withCheck(list))).failure;
    const same = failure !== undefined && failure.violations.some((v) => familyOf(v) === family);
    if (same) violations = failure.violations;
    return same;
  };
  let attempts = 1;
  if (!(await fails(ops))) return { ops: withCheck(ops), reproduced: false, attempts, violations };
  let current = ops.filter((o) => o.kind !== 'check');
  let n = 2;
  while (current.length >= 2 && Date.now() < deadline) {
    const size = Math.ceil(current.length / n);
    let reduced = false;
    for (let i = 0; i < n && Date.now() < deadline; i++) {
      const candidate = [...current.slice(0, i * size), ...current.slice((i + 1) * size)];
      if (candidate.length === current.length) continue;
      attempts += 1;
      if (await fails(candidate)) {
        current = candidate;
        n = Math.max(n - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (n >= current.length) break;
      n = Math.min(current.length, n * 2);
    }
  }
  return { ops: withCheck(current), reproduced: true, attempts, violations };
}

// Run a soak of `ops` operations from `seed`.
export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const started = Date.now();
  const ops = generateOps(options.seed, options.ops, options.checkEvery);
  const convergeTimeoutMs = options.convergeTimeoutMs ?? 60_000;
  const execution = await execute(ops, { convergeTimeoutMs, seed: options.seed, progress: options.progress });
  const report: SoakReport = { seed: options.seed, requestedOps: options.ops, ops: ops.length, durationMs: 0, ...execution, failure: undefined };
  if (execution.failure) {
    const { atOp, violations, log } = execution.failure;
    const family = familyOf(violations[0] ?? '');
    // Said now, with the state dump: shrinking can take its whole budget before the report.
    options.progress?.(`seed ${options.seed}: failed at op ${atOp + 1}:\n${violations.join('\n')}\n${log}`);
    options.progress?.(`seed ${options.seed}: failed at op ${atOp + 1}; shrinking to ${family}`);
    const shrunk = (options.shrinkBudgetMs ?? 0) > 0
      ? await shrink(ops.slice(0, atOp + 1), family, options.shrinkBudgetMs ?? 0, (list) => execute(list, { convergeTimeoutMs, seed: options.seed }))
      : { ops: ops.slice(0, atOp + 1), reproduced: false, attempts: 0, violations: [] };
    report.failure = {
      atOp, violations, log, reproducer: shrunk.ops.map(describeOp), reproduced: shrunk.reproduced, shrinkAttempts: shrunk.attempts, reproducerViolations: shrunk.violations,
    };
  }
  report.durationMs = Date.now() - started;
  return report;
}

// The failure part of a report as an operator reads it: seed, violations, the op sequence.
export function describeFailure(report: SoakReport): string {
  const f = report.failure;
  if (!f) return `seed ${report.seed}: ok`;
  return [
    `soak FAILED: seed ${report.seed}, at op ${f.atOp + 1} of ${report.ops}`,
    ...f.violations.map((v) => `  ${v}`),
    'the supervisor\'s last warnings and errors, then its last lines:',
    f.log,
    f.reproduced
      ? `shortest op sequence found that reproduces it (${f.reproducer.length} ops, ${f.shrinkAttempts} replays):`
      : `op sequence up to the failure (${f.shrinkAttempts > 0 ? 'it did not fail again in a replay' : 'not shrunk'}):`,
    ...f.reproducer.map((line, i) => `  ${String(i + 1).padStart(5)} ${line}`),
    ...(f.reproduced ? ['which fails with:', ...f.reproducerViolations.map((v) => `  ${v}`)] : []),
    `replay: npm run soak -- --ops ${report.requestedOps} --seed ${report.seed}`,
  ].join('\n');
}
