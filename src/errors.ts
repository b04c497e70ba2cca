// Base class for every error the supervisor reports to an operator. `code` is stable and is
// what tests assert on; `message` is the operator-facing text (file, step, what to do next).
export class SupervisorError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SupervisorError';
    this.code = code;
  }
}

// Narrow an unknown thrown value to a message without losing non-Error throws.
export function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// The code an operator's tool can branch on for any thrown value (issue 15: `status --json`
// carries it beside the message): a SupervisorError's own, else INTERNAL_ERROR, for a failure no
// module has named (a bug, or a system error nothing wrapped); its message says more.
export const INTERNAL_ERROR = 'INTERNAL_ERROR';
export function errorCodeOf(err: unknown): string {
  return err instanceof SupervisorError ? err.code : INTERNAL_ERROR;
}
