// The phases an app moves through, in one list (`deleting`: its file is gone and the delete is
// being confirmed; `removing`: the teardown runs) (STYLE rule 5): status files, `status`, the
// STATUS= line and the handlers all take them from here.
export const PHASES = ['pending', 'registering', 'deploying', 'running', 'updating', 'deleting', 'removing', 'failed', 'invalid'] as const;
export type Phase = (typeof PHASES)[number];

// Whole seconds from `now` until a `deleting` app's delete_at (never negative), as `status` and
// the journal say it.
export function secondsUntilDelete(deleteAt: string, now: number): number {
  return Math.max(0, Math.ceil((Date.parse(deleteAt) - now) / 1000));
}

// The phases the STATUS= line always names, even at 0 (docs/apps-dir.md rule 21); the others appear
// only while some app is in them.
export const SUMMARY_PHASES = ['running', 'pending', 'invalid', 'failed'] as const satisfies readonly Phase[];
