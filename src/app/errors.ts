// Errors of an app's compose file. Every message starts with the file (and line:column when the
// YAML node is known), says what is wrong and what to do, so it can go to the journal verbatim.
import { SupervisorError } from '../errors.ts';
import type { AppWarning } from './warning.ts';

// Stable codes; tests and callers branch on these, never on wording.
export type AppErrorCode =
  | 'APP_NAME'
  | 'APP_ENCODING'
  | 'APP_EMPTY'
  | 'APP_YAML'
  | 'APP_SCHEMA'
  | 'APP_XDSTACK_KEY'
  | 'APP_XDSTACK_VALUE'
  | 'APP_PORTS'
  | 'APP_REFUSED';

// Where in the file a problem sits (1-based, as editors count).
export type SourcePosition = { line: number; column: number };

// A compose file that cannot become a deployment.
export class AppError extends SupervisorError {
  declare readonly code: AppErrorCode;
  readonly file: string;
  readonly position: SourcePosition | undefined;
  // APP_REFUSED: every refusal, and the warnings found beside them; empty for other codes.
  readonly refusals: readonly AppWarning[];
  readonly warnings: readonly AppWarning[];
  constructor(
    code: AppErrorCode,
    file: string,
    problem: string,
    position?: SourcePosition,
    options?: { cause?: unknown; refusals?: readonly AppWarning[]; warnings?: readonly AppWarning[] },
  ) {
    super(code, `${where(file, position)}: ${problem}`, options);
    this.name = 'AppError';
    this.file = file;
    this.position = position;
    this.refusals = options?.refusals ?? [];
    this.warnings = options?.warnings ?? [];
  }
}

// `file:line:column`, the form editors and `grep -n` users jump to.
function where(file: string, position: SourcePosition | undefined): string {
  return position ? `${file}:${position.line}:${position.column}` : file;
}
