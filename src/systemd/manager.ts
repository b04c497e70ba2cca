import { connectDbusBackend } from './dbus-backend.ts';
import type { DbusBackendOptions } from './dbus-backend.ts';
import { SYSTEMD_CODES, SystemdError, classifyError, toSystemdError } from './errors.ts';
import type { SystemdCode } from './errors.ts';
import { readJournalLines } from './journal.ts';
import type { JobMethod, JobRemoved, ReadJournal, SignalWatch, SystemdBackend, SystemdManager, UnitState } from './types.ts';

// Longer than systemd's default TimeoutStartSec (90 s), so systemd's own verdict (job result
// `timeout`) normally arrives before ours does.
const DEFAULT_TIMEOUT_MS = 120_000;

// How long a job plus the wait for its target state may take, and where journal lines come from.
export type SystemdManagerOptions = {
  timeoutMs?: number | undefined;
  readJournal?: ReadJournal | undefined;
};

type JobPlan = { step: string; accept: readonly string[]; giveUp: readonly string[] };

// What each job must leave the unit in. A start that ends `inactive` exited right away; a stop
// may leave a unit `failed` (it failed before or while stopping) and still be done.
const PLANS: Record<JobMethod, JobPlan> = {
  StartUnit: { step: 'starting', accept: ['active'], giveUp: ['failed', 'inactive'] },
  RestartUnit: { step: 'restarting', accept: ['active'], giveUp: ['failed', 'inactive'] },
  StopUnit: { step: 'stopping', accept: ['inactive', 'failed'], giveUp: [] },
};

// Drive systemd through `backend`: queue jobs, wait for JobRemoved, then for the unit's state.
export function createSystemdManager(backend: SystemdBackend, options: SystemdManagerOptions = {}): SystemdManager {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const readJournal = options.readJournal ?? readJournalLines;
  let subscribed: Promise<void> | undefined;

  // systemd only sends JobRemoved to clients that called Subscribe; once per connection.
  const ensureSubscribed = (): Promise<void> => {
    subscribed ??= backend.subscribe().catch((err: unknown) => {
      subscribed = undefined;
      throw err;
    });
    return subscribed;
  };

  // Never let a broken bus or a missing journalctl hide the failure being reported.
  const readStateQuietly = (name: string): Promise<UnitState | undefined> =>
    backend.loadUnit(name).then((path) => backend.readUnitState(path)).catch(() => undefined);

  const failure = async (code: SystemdCode, step: string, unit: string, reason: string, cause?: unknown) => {
    const [state, journal] = await Promise.all([readStateQuietly(unit), readJournal(unit).catch(() => [])]);
    return new SystemdError(code, { unit, step, reason, state, journal }, { cause });
  };

  const waitForJob = async (jobs: SignalWatch<JobRemoved>, job: string, signal: AbortSignal) => {
    for (;;) {
      const removed = await jobs.next(signal);
      if (removed.job === job) return removed.result;
    }
  };

  const waitForState = async (name: string, plan: JobPlan, signal: AbortSignal): Promise<void> => {
    // LoadUnit, not GetUnit: real systemd garbage-collects an inactive unit nobody references,
    // and GetUnit then says NoSuchUnit (docs/platform-notes.md §2).
    const path = await backend.loadUnit(name);
    const changes = await backend.watchUnit(path);
    try {
      for (;;) {
        const state = await backend.readUnitState(path);
        if (plan.accept.includes(state.ActiveState)) return;
        if (plan.giveUp.includes(state.ActiveState)) {
          throw await failure(SYSTEMD_CODES.unitFailed, plan.step, name, `the job finished but the unit is ${state.ActiveState}`);
        }
        await changes.next(signal);
      }
    } finally {
      changes.close();
    }
  };

  const runJob = async (method: JobMethod, name: string): Promise<void> => {
    const plan = PLANS[method];
    // A ref'd timer, not AbortSignal.timeout(): that one is unref'd, and with nothing else
    // pending (the in-process simulator) the process would exit mid-wait instead of timing out.
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), timeoutMs);
    const signal = deadline.signal;
    try {
      await ensureSubscribed();
      const jobs = await backend.watchJobs();
      let result: string;
      try {
        const job = await backend.queueJob(method, name);
        result = await waitForJob(jobs, job, signal);
      } finally {
        jobs.close();
      }
      if (result !== 'done') {
        throw await failure(SYSTEMD_CODES.unitFailed, plan.step, name, `the job ended with result "${result}"`);
      }
      await waitForState(name, plan, signal);
    } catch (err) {
      if (err instanceof SystemdError) throw err;
      if (signal.aborted) {
        throw await failure(SYSTEMD_CODES.timeout, plan.step, name, `not ${plan.accept.join(' or ')} after ${timeoutMs} ms`);
      }
      const { code, reason } = classifyError(err);
      // A broken bus has no unit state to show; anything else (NoSuchUnit) gets the full story.
      if (code === SYSTEMD_CODES.bus) throw toSystemdError(err, { unit: name, step: plan.step, journal: [] });
      throw await failure(code, plan.step, name, reason, err);
    } finally {
      clearTimeout(timer);
    }
  };

  return {
    async enableUnits(names) {
      try {
        const changes = await backend.enableUnitFiles(names);
        // Nothing linked means nothing for systemd to re-read: a re-run stays a no-op.
        if (changes.length > 0) await backend.reload();
        return changes;
      } catch (err) {
        throw toSystemdError(err, { unit: names.join(', '), step: 'enabling', journal: [] });
      }
    },
    startUnit: (name) => runJob('StartUnit', name),
    restartUnit: (name) => runJob('RestartUnit', name),
    stopUnit: (name) => runJob('StopUnit', name),
    async unitState(name) {
      try {
        return await backend.readUnitState(await backend.loadUnit(name));
      } catch (err) {
        throw toSystemdError(err, { unit: name, step: 'reading the state of', journal: [] });
      }
    },
    close: () => backend.close(),
  };
}

// Connect to systemd on the system bus (honours DBUS_SYSTEM_BUS_ADDRESS) or on `address`.
export async function connectSystemd(options: SystemdManagerOptions & DbusBackendOptions = {}): Promise<SystemdManager> {
  const backend = await connectDbusBackend(options).catch((err: unknown) => {
    throw toSystemdError(err, { unit: 'org.freedesktop.systemd1', step: 'connecting to', journal: [] });
  });
  return createSystemdManager(backend, options);
}

// Start units one after another, each only once the previous is active; units already active
// are left alone, so a re-run on a healthy host starts nothing. Returns the units it started.
export async function startUnitsInOrder(systemd: SystemdManager, names: string[]): Promise<string[]> {
  const started: string[] = [];
  for (const name of names) {
    const state = await systemd.unitState(name);
    if (state.ActiveState === 'active') continue;
    await systemd.startUnit(name);
    started.push(name);
  }
  return started;
}
