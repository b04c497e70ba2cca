// Operator feedback in one place: every phase change becomes a status file (for config tools
// that wait on `phase == "running"`), at most one journal line, and a fresh STATUS= summary.
import type { AppRecord } from '../state/record.ts';
import type { AppStatus } from '../status/schema.ts';
import type { EnvDigester } from '../status/env-digest.ts';
import { secondsUntilDelete, type Phase } from '../status/phase.ts';
import type { Logger } from '../log/logger.ts';
import { logDecision, type Decision } from '../log/decision.ts';
import type { RepeatSummariser } from '../log/repeat.ts';
import { countPhases, formatStatusLine } from '../status/summary.ts';

// How an app leaves the status files.
export type Departure = 'removed' | 'gone';

export type StatusUpdate = {
  app: string;
  file: string;
  // 'removed': a teardown is over; 'gone': the file went and nothing of the app was ours (a
  // refused file deleted). Either way the status file goes with the app.
  phase: Phase | Departure;
  record?: AppRecord;
  error?: string;
  // The stable code of `error` (issue 15); given with every error.
  code?: string;
  // Why the file is held back (invalid, conflict, refused); logged once per distinct reason.
  held?: { action: 'invalid' | 'conflict' | 'refused'; reason: string; fileHash?: string };
  warnings?: string[];
  // Set with `warnings` from a pass: log them once per content hash (issue 8).
  warned?: { fileHash: string };
  urls?: string[];
  // The GPUs the app's VM was given, with the operation that gave them (canonical PCI addresses).
  gpus?: string[];
  // With phase `deleting`: when the teardown is due (epoch ms).
  deleteAt?: number;
};

export type ReporterDeps = {
  // Statuses to start from (the last run's), so an unchanged app is not reported anew.
  initial?: readonly AppStatus[];
  log: Logger;
  repeats: RepeatSummariser;
  write(status: AppStatus): Promise<void>;
  remove(app: string): Promise<void>;
  // The STATUS= line changed.
  summary(line: string): void;
  now(): number;
  // A record's envHash as the status's env_digest (keyed, src/status/env-digest.ts). Without it
  // env_digest is null.
  envDigest?: EnvDigester;
};

export type Reporter = {
  update(u: StatusUpdate): Promise<void>;
  // A reconcile decision (rule 22); failures go through the repeat summariser.
  decide(d: Decision, retryInMs?: number): void;
  // A reconcile of `app` finished cleanly; ends a failure streak with one line.
  succeeded(app: string): void;
  line(): string;
  statuses(): AppStatus[];
  // How many apps are in each phase (a copy).
  counts(): Record<Phase, number>;
  // The status of one app, without copying every other (a pass asks for each app's).
  status(app: string): AppStatus | undefined;
  setWatcherDegraded(degraded: boolean): void;
};

// Create the reporter; it keeps the last status of every app in memory to count phases.
export function createReporter(deps: ReporterDeps): Reporter {
  const current = new Map<string, AppStatus>((deps.initial ?? []).map((s) => [s.app, s]));
  const heldKey = new Map<string, string>();
  const warnedKey = new Map<string, string>();
  const failing = new Set<string>();
  let degraded = false;
  let lastLine = '';

  // Apps by phase, kept with `current`: the summary is built on every status change, and counting
  // every status for each cost a drop ~5 ms and a copy of 5 000 of them each time (issue 18).
  const counts = countPhases([...current.values()]);
  const put = (status: AppStatus): void => {
    const before = current.get(status.app);
    if (before) counts[before.phase] -= 1;
    counts[status.phase] += 1;
    current.set(status.app, status);
  };
  const forget = (app: string): void => {
    const before = current.get(app);
    if (before) counts[before.phase] -= 1;
    current.delete(app);
  };
  const line = () => formatStatusLine(counts, { watcherDegraded: degraded });
  const publish = () => {
    const next = line();
    if (next !== lastLine) {
      lastLine = next;
      deps.summary(next);
    }
  };

  // One journal line a phase change: `from` undefined is a new app; a pending delete says when.
  // The app's VM, hash (a 12-hex prefix, as decisions give hashes) and error code ride along, so
  // `journalctl VM=…`, `HASH=…` or `CODE=…` finds its story (issue 15).
  const logPhase = (status: AppStatus, from: Phase | undefined, to: Phase | Departure): void => {
    const due = to === 'deleting' && status.delete_at ? ` (${status.file} is gone; torn down in ${secondsUntilDelete(status.delete_at, deps.now())} s unless it comes back)` : '';
    deps.log.info(
      { APP: status.app, FILE: status.file, PHASE: to, FROM_PHASE: from ?? null, VM: status.vm_id, HASH: status.compose_hash?.slice(0, 12) ?? null, CODE: status.code ?? null },
      `${status.app}: ${from ?? 'new'} -> ${to}${due}`,
    );
  };

  return {
    async update(u) {
      if (u.phase === 'removed' || u.phase === 'gone') {
        // The journal says when a teardown is over, not only that it began, and when a status
        // leaves with its file.
        const before = current.get(u.app);
        if (before) logPhase(before, before.phase, u.phase);
        forget(u.app);
        heldKey.delete(u.app);
        await deps.remove(u.app);
        publish();
        return;
      }
      const before = current.get(u.app);
      const rec = u.record;
      const status: AppStatus = {
        app: u.app,
        file: u.file,
        phase: u.phase,
        app_id: rec?.appId ?? before?.app_id ?? null,
        vm_id: rec?.vmId ?? before?.vm_id ?? null,
        compose_hash: rec?.appliedHash ?? rec?.intent?.toHash ?? before?.compose_hash ?? null,
        urls: u.urls ?? before?.urls ?? [],
        last_error: u.error ?? (u.phase === 'running' ? null : (before?.last_error ?? null)),
        code: u.error !== undefined ? (u.code ?? null) : u.phase === 'running' ? null : (before?.code ?? null),
        warnings: u.warnings ?? before?.warnings ?? [],
        delete_at: u.phase === 'deleting' && u.deleteAt !== undefined ? new Date(u.deleteAt).toISOString() : null,
        gpus: u.gpus ?? before?.gpus ?? [],
        // The values the VM was given, as the record says; without a record, what was reported.
        env_digest: rec ? (deps.envDigest?.(rec.envHash) ?? null) : (before?.env_digest ?? null),
        updated_at: new Date(deps.now()).toISOString(),
      };
      if (status.compose_hash === '') status.compose_hash = null;
      if (u.held) {
        const key = `${u.held.action}\n${u.held.fileHash ?? ''}\n${u.held.reason}`;
        if (heldKey.get(u.app) !== key) {
          heldKey.set(u.app, key);
          logDecision(deps.log, { app: u.app, file: u.file, action: u.held.action, to: u.held.fileHash, reason: u.held.reason });
        }
      } else if (status.phase !== 'invalid') {
        // Only a recovery forgets the problem: a held file that is settling again (touched,
        // chmodded) stays invalid, and its unchanged error is not logged a second time (rule 8).
        heldKey.delete(u.app);
      }
      if (u.warned && u.warnings && u.warnings.length > 0 && warnedKey.get(u.app) !== u.warned.fileHash) {
        warnedKey.set(u.app, u.warned.fileHash);
        for (const w of u.warnings) deps.log.warn({ APP: u.app, FILE: u.file, TO: u.warned.fileHash.slice(0, 12) }, `${u.file}: ${w}`);
      }
      const same =
        before && before.phase === status.phase && before.last_error === status.last_error && (before.code ?? null) === status.code &&
        before.vm_id === status.vm_id && before.app_id === status.app_id &&
        before.compose_hash === status.compose_hash && before.warnings.join('\n') === status.warnings.join('\n') && before.urls.join('\n') === status.urls.join('\n') &&
        (before.delete_at ?? null) === status.delete_at && (before.gpus ?? []).join(',') === (status.gpus ?? []).join(',') &&
        (before.env_digest ?? null) === status.env_digest;
      if (same) return;
      if (before?.phase !== status.phase) logPhase(status, before?.phase, status.phase);
      put(status);
      await deps.write(status);
      publish();
    },
    decide(d, retryInMs) {
      if (d.level === 'error') {
        failing.add(d.app);
        deps.repeats.failure(d, retryInMs);
      } else if (failing.has(d.app)) {
        // A retry of a failing operation: the failure summary already speaks for it.
        deps.log.debug({ APP: d.app, FILE: d.file, ACTION: d.action }, `${d.app}: retrying ${d.action}`);
      } else {
        logDecision(deps.log, d);
      }
    },
    succeeded(app) {
      if (!failing.delete(app)) return;
      const streak = deps.repeats.clear(app);
      deps.log.info({ APP: app }, `${app}: recovered after ${streak} failures`);
    },
    line,
    statuses: () => [...current.values()],
    counts: () => ({ ...counts }),
    status: (app) => current.get(app),
    setWatcherDegraded(value) {
      degraded = value;
      publish();
    },
  };
}
