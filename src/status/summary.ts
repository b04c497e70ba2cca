// The one-line summary systemd shows as the unit's status (STATUS=, docs/apps-dir.md rule 21).
import { PHASES, SUMMARY_PHASES, type Phase } from './phase.ts';

// How many apps are in each phase; every phase is present, 0 when empty.
export function countPhases(statuses: ReadonlyArray<{ phase: Phase }>): Record<Phase, number> {
  const counts = Object.fromEntries(PHASES.map((p) => [p, 0])) as Record<Phase, number>;
  for (const s of statuses) counts[s.phase] += 1;
  return counts;
}

// `running 3, pending 1, invalid 0, failed 0`, then the busy phases that are not empty
// (`, deploying 1`), then `; watcher degraded` while the watcher is down.
export function formatStatusLine(counts: Readonly<Record<Phase, number>>, options: { watcherDegraded?: boolean } = {}): string {
  const always: readonly Phase[] = SUMMARY_PHASES;
  const busy = PHASES.filter((p) => !always.includes(p) && counts[p] > 0);
  const line = [...always, ...busy].map((p) => `${p} ${counts[p]}`).join(', ');
  return options.watcherDegraded ? `${line}; watcher degraded` : line;
}
