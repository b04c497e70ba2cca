// Retry delays per (app, content hash): 5 s → 5 min, ×2, ±20 % jitter by default (docs/apps-dir.md rule
// 16). A new hash for the app starts again from the initial delay.
export type BackoffPolicy = { initialMs: number; maxMs: number; factor: number; jitter: number };

export const defaultBackoff: BackoffPolicy = { initialMs: 5_000, maxMs: 300_000, factor: 2, jitter: 0.2 };

export type Backoff = {
  // Record a failure of `app` at `hash` and return how long to wait before the next try.
  fail(app: string, hash: string): { delayMs: number; attempt: number };
  // Forget the failures of `app` (it succeeded, or its file went away).
  reset(app: string): void;
  attempts(app: string): number;
};

// Create a backoff tracker; `random` is injectable so tests can pin the jitter.
export function createBackoff(policy: BackoffPolicy, random: () => number = Math.random): Backoff {
  const failures = new Map<string, { hash: string; attempt: number }>();
  return {
    fail(app, hash) {
      const prev = failures.get(app);
      const attempt = prev && prev.hash === hash ? prev.attempt + 1 : 1;
      failures.set(app, { hash, attempt });
      const base = Math.min(policy.maxMs, policy.initialMs * policy.factor ** (attempt - 1));
      const spread = base * policy.jitter * (2 * random() - 1);
      return { delayMs: Math.round(Math.min(policy.maxMs * (1 + policy.jitter), base + spread)), attempt };
    },
    reset(app) {
      failures.delete(app);
    },
    attempts(app) {
      return failures.get(app)?.attempt ?? 0;
    },
  };
}
