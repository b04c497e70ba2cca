// Keeps a failing app from flooding the journal (docs/apps-dir.md rule 22): the first failure is logged
// in full; identical ones (same app, same reason) become summary lines with the count and the
// next retry, on the 2nd, 4th, 8th … occurrence, and at least once per `maxQuietMs` so a
// long-failing app still shows up in today's journal.
import type { Clock } from '../clock.ts';
import { logDecision, type Decision } from './decision.ts';
import type { Logger } from './logger.ts';

export type RepeatSummariser = {
  // Log a failed decision unless it repeats the app's previous failure; `retryInMs` is when
  // the caller will try again (absent for errors that wait for a new file).
  failure(decision: Decision, retryInMs?: number): void;
  // End the app's failure streak (it succeeded or its file went away); returns how many
  // failures the streak had, so the success line can say "recovered after N failures".
  clear(app: string): number;
};

export type RepeatDeps = {
  log: Logger;
  clock: Pick<Clock, 'now'>;
  // Longest silence while the same failure repeats; 1 hour by default.
  maxQuietMs?: number;
};

type Streak = { reason: string; count: number; firstAt: number; lastLoggedAt: number };

const HOUR_MS = 3_600_000;

// Create a summariser; keep one per supervisor so streaks survive across resyncs.
export function createRepeatSummariser(deps: RepeatDeps): RepeatSummariser {
  const maxQuietMs = deps.maxQuietMs ?? HOUR_MS;
  const streaks = new Map<string, Streak>();
  return {
    failure(decision, retryInMs) {
      const now = deps.clock.now();
      const nextRetry = retryInMs === undefined ? undefined : new Date(now + retryInMs).toISOString();
      const retry = nextRetry === undefined ? {} : { NEXT_RETRY: nextRetry };
      const streak = streaks.get(decision.app);
      if (streak === undefined || streak.reason !== decision.reason) {
        streaks.set(decision.app, { reason: decision.reason, count: 1, firstAt: now, lastLoggedAt: now });
        logDecision(deps.log, decision, { fields: retry, note: nextRetry && `next retry ${nextRetry}` });
        return;
      }
      streak.count += 1;
      if (!isPowerOfTwo(streak.count) && now - streak.lastLoggedAt < maxQuietMs) return;
      streak.lastLoggedAt = now;
      const since = new Date(streak.firstAt).toISOString();
      logDecision(deps.log, decision, {
        fields: { REPEATED: streak.count, SINCE: since, ...retry },
        note: `${streak.count} times since ${since}${nextRetry ? `, next retry ${nextRetry}` : ''}`,
      });
    },
    clear(app) {
      const count = streaks.get(app)?.count ?? 0;
      streaks.delete(app);
      return count;
    },
  };
}

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(Math.log2(n));
}
