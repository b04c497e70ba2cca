// One journal line per reconcile decision (docs/apps-dir.md rule 22), with the fields an operator greps
// for: APP, FILE, ACTION, FROM/TO (12-hex hash prefixes) and REASON.
import { pino } from 'pino';
import type { Level, Logger } from './logger.ts';

// Every decision the reconciler can take about an app.
export const DECISION_ACTIONS = ['deploy', 'upgrade', 'teardown', 'noop', 'invalid', 'conflict', 'refused', 'repair'] as const;
export type DecisionAction = (typeof DECISION_ACTIONS)[number];

// The one place that says how loud each decision is: the three problems are warnings, so
// `journalctl -p warning` lists exactly them; noop runs every resync and stays at debug.
export const DECISION_LEVEL: Readonly<Record<DecisionAction, Level>> = {
  deploy: 'info',
  upgrade: 'info',
  teardown: 'info',
  noop: 'debug',
  invalid: 'warn',
  conflict: 'warn',
  refused: 'warn',
  // Someone else changed what is ours (an allowlist entry edited by hand or by another tool).
  repair: 'warn',
};

export type Decision = {
  app: string;
  file: string;
  action: DecisionAction;
  // Compose hashes (full or prefix); logged as their first 12 hex digits.
  from?: string | null;
  to?: string | null;
  reason: string;
  // Raise the line above the action's level, e.g. `error` for a deploy that failed. It never
  // lowers it: a problem must stay visible under `journalctl -p warning`.
  level?: Level;
};

const HASH_PREFIX = 12;

// The level a decision is logged at: its action's level, raised by `level` if that is louder.
export function decisionLevel(decision: Pick<Decision, 'action' | 'level'>): Level {
  const base = DECISION_LEVEL[decision.action];
  if (decision.level === undefined) return base;
  return pino.levels.values[decision.level]! > pino.levels.values[base]! ? decision.level : base;
}

// What the repeat summariser adds to a line: fields (REPEATED, NEXT_RETRY) and a note for the text.
export type DecisionExtra = { fields?: Record<string, unknown>; note?: string };

// Log one decision as one line at the level `decisionLevel` gives it.
export function logDecision(log: Logger, decision: Decision, extra: DecisionExtra = {}): void {
  const from = shortHash(decision.from);
  const to = shortHash(decision.to);
  const fields = {
    APP: decision.app,
    FILE: decision.file,
    ACTION: decision.action,
    ...(from === undefined ? {} : { FROM: from }),
    ...(to === undefined ? {} : { TO: to }),
    REASON: decision.reason,
    ...extra.fields,
  };
  const text = describeDecision(decision.app, decision.action, from, to, decision.reason);
  log[decisionLevel(decision)](fields, extra.note === undefined ? text : `${text} (${extra.note})`);
}

function shortHash(hash: string | null | undefined): string | undefined {
  return hash ? hash.slice(0, HASH_PREFIX) : undefined;
}

// `shop: upgrade 1a2b3c4d5e6f -> 9f8e7d6c5b4a: content changed`, readable without the fields.
function describeDecision(app: string, action: DecisionAction, from: string | undefined, to: string | undefined, reason: string): string {
  const hashes = from && to ? ` ${from} -> ${to}` : from || to ? ` ${from ?? to}` : '';
  return `${app}: ${action}${hashes}: ${reason}`;
}
