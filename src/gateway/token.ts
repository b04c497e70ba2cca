// The DNS provider's API token (`[certificate] token_file`), read only in ACME mode. The file is
// held to NAME.env's rules (src/gateway/file-checks.ts), and the token never reaches a message or
// a log: refusals describe the file, and the value is kept where only reveal() gets it out.
import { inspect } from 'node:util';
import { ownerName } from '../fsx/guarded-read.ts';
import type { Refusal } from './errors.ts';
import { readGuarded } from './file-checks.ts';

// A token file holds one token (Cloudflare's are 40 characters); more is the wrong file.
const TOKEN_FILE_MAX_BYTES = 4096;

const REDACTED = '[redacted]';
// One word of printable ASCII: a space or a second line means more than the token is in the file.
const ONE_TOKEN = /^[\x21-\x7e]+$/;
// `CF_API_TOKEN=…`, copied from upstream's .env; nothing but a NAME= line starts like this (a
// base64 token ends its `=` padding, it does not continue after it).
const DOTENV_LINE = /^[A-Za-z_][A-Za-z0-9_]*=./;

// The token. Printing, inspecting or JSON-encoding it shows "[redacted]"; reveal() is the only
// way to the value, for the one call that sends it to the gateway.
export class GatewayToken {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return REDACTED;
  }
  toJSON(): string {
    return REDACTED;
  }
  [inspect.custom](): string {
    return `GatewayToken ${REDACTED}`;
  }
}

// Read and check the token file at `path`, which must belong to `owner`.
export async function readGatewayToken(path: string, owner: number): Promise<{ token: GatewayToken } | { refusal: Refusal }> {
  const read = await readGuarded(path, 'secret', owner, TOKEN_FILE_MAX_BYTES);
  if (read.kind === 'refused') return { refusal: read.refusal };
  if (read.kind === 'missing') {
    const text =
      'does not exist, but an ACME certificate needs a Cloudflare API token that may edit the DNS of the domain\'s zone; ' +
      `create it: run install -m 600 -o ${ownerName(owner)} /dev/null ${path} and write the token into it, or set [certificate] mode = "self-signed"`;
    return { refusal: { code: 'GATEWAY_TOKEN_MISSING', text } };
  }
  const value = read.bytes.toString('latin1').trim();
  read.bytes.fill(0);
  const invalid = (text: string) => ({ refusal: { code: 'GATEWAY_TOKEN_INVALID', text } as const });
  if (value === '') return invalid(`is empty; write the Cloudflare API token into it`);
  if (DOTENV_LINE.test(value)) return invalid('holds a NAME=value line, but it must hold only the token; remove everything before the token');
  if (!ONE_TOKEN.test(value)) return invalid('holds more than one token (spaces, several lines or characters no token has); write only the token into it, on one line');
  return { token: new GatewayToken(value) };
}
