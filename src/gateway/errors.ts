// Why gateway.d/gateway.toml cannot be used. Every message is one line an operator can act on:
// the file, the key, the problem and the fix, as supervisor.toml's errors are. No message carries
// the DNS provider token, and none keeps a `cause` that could (a TOML error quotes its input).
import { SupervisorError } from '../errors.ts';

// Stable codes; callers and tests branch on these, never on wording.
export type GatewayConfigErrorCode =
  // gateway.toml is not TOML, has an unknown key or a bad value, or its keys contradict each other.
  | 'GATEWAY_CONFIG_INVALID'
  // gateway.toml is a symlink, not a regular file, hard-linked, not the owner's, or writable by others.
  | 'GATEWAY_CONFIG_UNSAFE'
  // gateway.toml (or its directory) exists but cannot be read.
  | 'GATEWAY_CONFIG_UNREADABLE'
  // ACME mode and `[certificate] token_file` does not exist.
  | 'GATEWAY_TOKEN_MISSING'
  // The token file is a symlink, not a regular file, hard-linked, not the owner's, or readable by others.
  | 'GATEWAY_TOKEN_UNSAFE'
  // The token file is empty, too large, or holds more than one token.
  | 'GATEWAY_TOKEN_INVALID'
  // The token file exists but cannot be read.
  | 'GATEWAY_TOKEN_UNREADABLE';

// One reason a file of gateway.d is refused: `text` is "<problem>; <fix>", without the file's name.
export type Refusal = { code: GatewayConfigErrorCode; text: string };

// gateway.toml cannot be used; `problems` are "<key>: <problem>; <fix>", the message joins them.
export class GatewayConfigError extends SupervisorError {
  declare readonly code: GatewayConfigErrorCode;
  readonly file: string;
  readonly problems: readonly string[];
  constructor(code: GatewayConfigErrorCode, file: string, problems: string[]) {
    super(code, `${file}: ${problems.join('; ')}`);
    this.name = 'GatewayConfigError';
    this.file = file;
    this.problems = problems;
  }
}

// Stable codes of the gateway's own secrets file (`<state_dir>/gateway/secrets.json`).
export type GatewaySecretsErrorCode =
  // The file is not JSON, or not the secrets' shape: never regenerated, the operator decides.
  | 'GATEWAY_SECRETS_CORRUPT'
  // The file or its directory cannot be read or written.
  | 'GATEWAY_SECRETS_IO';

// The gateway's secrets cannot be read or kept. No message quotes the file's text, which holds
// the tokens (a JSON.parse message quotes its input, so it is never passed on).
export class GatewaySecretsError extends SupervisorError {
  declare readonly code: GatewaySecretsErrorCode;
  readonly file: string;
  constructor(code: GatewaySecretsErrorCode, file: string, problem: string) {
    super(code, `${file}: ${problem}`);
    this.name = 'GatewaySecretsError';
    this.file = file;
  }
}

// Why a call to the gateway failed: not reachable (yet), refused by the gateway with its own
// message, or an answer we cannot read.
export type GatewayAdminErrorCode = 'GATEWAY_UNREACHABLE' | 'GATEWAY_REFUSED' | 'GATEWAY_PROTOCOL';

export class GatewayAdminError extends SupervisorError {
  declare readonly code: GatewayAdminErrorCode;
  // The gateway's own message for GATEWAY_REFUSED (e.g. why a certificate was not issued).
  readonly gatewayMessage: string;
  constructor(code: GatewayAdminErrorCode, message: string, gatewayMessage = '') {
    super(code, message);
    this.name = 'GatewayAdminError';
    this.gatewayMessage = gatewayMessage;
  }
}
