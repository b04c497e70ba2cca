import { SupervisorError } from '../errors.ts';
import { DBusError } from './dbus.ts';
import type { UnitState } from './types.ts';

// Stable codes for everything that can go wrong while driving systemd.
export const SYSTEMD_CODES = {
  unitFailed: 'SYSTEMD_UNIT_FAILED',
  noSuchUnit: 'SYSTEMD_NO_SUCH_UNIT',
  timeout: 'SYSTEMD_TIMEOUT',
  bus: 'SYSTEMD_BUS',
} as const;

export type SystemdCode = (typeof SYSTEMD_CODES)[keyof typeof SYSTEMD_CODES];

// The error name real systemd (and the simulator) return for a unit it cannot find.
export const NO_SUCH_UNIT_ERROR = 'org.freedesktop.systemd1.NoSuchUnit';

// What an operator needs to act on a unit failure: which unit, what state it was left in, and
// what it logged last.
export type UnitFailureFacts = {
  unit: string;
  step: string;
  reason: string;
  state?: UnitState | undefined;
  journal: string[];
};

// A systemd operation failed; `unit`, `state` and `journal` are kept for callers and logs.
export class SystemdError extends SupervisorError {
  readonly unit: string;
  readonly state: UnitState | undefined;
  readonly journal: string[];
  constructor(code: SystemdCode, facts: UnitFailureFacts, options?: { cause?: unknown }) {
    super(code, formatUnitFailure(code, facts), options);
    this.name = 'SystemdError';
    this.unit = facts.unit;
    this.state = facts.state;
    this.journal = facts.journal;
  }
}

const NEXT_STEP: Record<SystemdCode, (unit: string) => string> = {
  SYSTEMD_UNIT_FAILED: (unit) => `fix the cause shown above (journalctl -u ${unit}), then re-run init`,
  SYSTEMD_NO_SUCH_UNIT: (unit) =>
    `check that the package installed ${unit} (systemctl cat ${unit}) and that systemd was reloaded`,
  SYSTEMD_TIMEOUT: (unit) => `check why it is stuck (systemctl status ${unit}), then re-run init`,
  SYSTEMD_BUS: () =>
    'check that dbus is running and the supervisor may talk to org.freedesktop.systemd1 (DBUS_SYSTEM_BUS_ADDRESS)',
};

// Build the operator-facing text: unit, step, reason, state, journal tail, next step.
export function formatUnitFailure(code: SystemdCode, facts: UnitFailureFacts): string {
  const state = facts.state
    ? `; unit is ${facts.state.ActiveState} (${facts.state.SubState}), load state ${facts.state.LoadState}`
    : '';
  const journal = facts.journal.length
    ? `\nlast journal lines of ${facts.unit}:\n${facts.journal.map((line) => `  ${line}`).join('\n')}`
    : '';
  return `systemd: ${facts.step} ${facts.unit}: ${facts.reason}${state}${journal}\nnext: ${NEXT_STEP[code](facts.unit)}`;
}

// Sort whatever a backend threw into a code and a reason: systemd's NoSuchUnit, or the bus.
export function classifyError(err: unknown): { code: SystemdCode; reason: string } {
  if (err instanceof DBusError) {
    const code = err.type === NO_SUCH_UNIT_ERROR ? SYSTEMD_CODES.noSuchUnit : SYSTEMD_CODES.bus;
    return { code, reason: `${err.type} ("${err.text}")` };
  }
  return { code: SYSTEMD_CODES.bus, reason: err instanceof Error ? err.message : String(err) };
}

// Map whatever a backend threw to a SystemdError about `unit`, keeping SystemdErrors as they are.
export function toSystemdError(err: unknown, facts: Omit<UnitFailureFacts, 'reason'>): SystemdError {
  if (err instanceof SystemdError) return err;
  const { code, reason } = classifyError(err);
  return new SystemdError(code, { ...facts, reason }, { cause: err });
}
