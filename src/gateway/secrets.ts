// The gateway CVM's secrets (issue 14, "Enable"): generated once, kept in
// `<state_dir>/gateway/secrets.json` (mode 0600), and never regenerated behind the operator's
// back. The app id names the gateway to the KMS (`gatewayAppId`) and derives its keys, and the
// launch token's hash is in its measured app-compose: new values would give a different gateway,
// a compose hash the KMS allowlist does not hold, and an ACME account and certificate left behind
// on the old one's disk (docs/dstack.md, "Tier 2: the gateway CVM").
// What is not here: the WireGuard key, which the CVM generates and keeps on its own encrypted disk
// (`/data/gateway/wg.key`, gateway-v0.5.8 gateway/dstack-app/builder/entrypoint.sh).
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inspect } from 'node:util';
import * as z from 'zod';
import { writeFileOnce } from '../fsx/atomic.ts';
import { GatewaySecretsError } from './errors.ts';

// Lengths and alphabet of upstream's deploy script: `tr -dc 'a-zA-Z0-9' | fold -w 32` for the
// launch token (gateway/dstack-app/deploy-to-vmm.sh) and 48 characters for the admin token
// (its .env template after v0.5.11, dstack/gateway/dstack-app/deploy-to-vmm.sh).
const ADMIN_TOKEN_LENGTH = 48;
const LAUNCH_TOKEN_LENGTH = 32;
const TOKEN_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
// 62 × 4: a byte from 248 up is dropped, so every character is equally likely (≈ 5.95 bits each).
const UNBIASED_BYTE_LIMIT = Math.floor(256 / TOKEN_ALPHABET.length) * TOKEN_ALPHABET.length;
// One gateway node: upstream requires a node id > 0, unique in its cluster (the .env template).
const NODE_ID = 1;
// A gateway app id is 20 bytes, as every dstack app id (upstream's GATEWAY_APP_ID).
const APP_ID_BYTES = 20;

const REDACTED = '[redacted]';

const token = (length: number) =>
  z.string({ error: `must be a string of ${length} letters and digits` }).regex(new RegExp(`^[A-Za-z0-9]{${length}}$`), { error: `must be ${length} letters and digits` });

// The file, snake_case like the other state files. Zod's messages for it name the key and the
// rule, never the value.
const GatewaySecretsFileSchema = z
  .object({
    version: z.literal(1, { error: 'must be 1 (a newer supervisor wrote this file?)' }),
    app_id: z.string({ error: 'must be a string' }).regex(/^[0-9a-f]{40}$/, { error: 'must be 40 lower-case hex digits' }),
    node_id: z.number({ error: 'must be a number' }).int({ error: 'must be a whole number' }).min(1, { error: 'must be at least 1' }).max(0xffff_ffff, { error: 'must fit 32 bits' }),
    admin_api_token: token(ADMIN_TOKEN_LENGTH),
    app_launch_token: token(LAUNCH_TOKEN_LENGTH),
  })
  .strict();

type GatewaySecretsFile = z.infer<typeof GatewaySecretsFileSchema>;

// A source of random bytes; crypto.randomBytes unless a test needs fixed values.
export type RandomBytes = (size: number) => Uint8Array;

// The secrets. The app id and node id are public (the app id is in auth-config.json); the tokens
// come out only through their methods: printing, inspecting or JSON-encoding the object shows
// "[redacted]" in their place.
export class GatewaySecrets {
  // 40 lower-case hex digits, without 0x.
  readonly appId: string;
  readonly nodeId: number;
  readonly #adminApiToken: string;
  readonly #appLaunchToken: string;
  constructor(file: GatewaySecretsFile) {
    this.appId = file.app_id;
    this.nodeId = file.node_id;
    this.#adminApiToken = file.admin_api_token;
    this.#appLaunchToken = file.app_launch_token;
  }
  // The bearer token of the gateway's admin API (read by gateway images after v0.5.11).
  adminApiToken(): string {
    return this.#adminApiToken;
  }
  // APP_LAUNCH_TOKEN: the pre-launch check inside the CVM compares its sha256 with the manifest's.
  appLaunchToken(): string {
    return this.#appLaunchToken;
  }
  toJSON(): object {
    return { appId: this.appId, nodeId: this.nodeId, adminApiToken: REDACTED, appLaunchToken: REDACTED };
  }
  toString(): string {
    return `GatewaySecrets(app id ${this.appId}, node ${this.nodeId}, tokens ${REDACTED})`;
  }
  [inspect.custom](): string {
    return this.toString();
  }
}

// Where the secrets live.
export function gatewaySecretsPath(stateDir: string): string {
  return join(stateDir, 'gateway', 'secrets.json');
}

function errnoOf(err: unknown): string {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : 'unknown error';
}

function corrupt(file: string, problem: string): GatewaySecretsError {
  return new GatewaySecretsError(
    'GATEWAY_SECRETS_CORRUPT',
    file,
    `${problem}. It holds the gateway CVM's app id and launch token, which the gateway was created with, so it is never regenerated: ` +
      'restore it from a backup; or, to start the gateway afresh, remove the dstack-gateway CVM and this file ' +
      '(the new gateway gets a new app id, ACME account and certificate)',
  );
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const key = issue.path.map(String).join('.');
  return key === '' ? issue.message : `${key} ${issue.message}`;
}

// The secrets in `stateDir`, or undefined when none were ever generated. Never creates them.
export async function readGatewaySecrets(stateDir: string): Promise<GatewaySecrets | undefined> {
  const file = gatewaySecretsPath(stateDir);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return undefined;
    throw new GatewaySecretsError('GATEWAY_SECRETS_IO', file, `cannot be read (${errnoOf(err)}); check the file and its directory`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    // The parser's message quotes the text around the fault, which may be a token.
    throw corrupt(file, 'is not valid JSON');
  }
  const parsed = GatewaySecretsFileSchema.safeParse(raw);
  if (!parsed.success) throw corrupt(file, `is not the gateway's secrets (${parsed.error.issues.map(describeIssue).join('; ')})`);
  return new GatewaySecrets(parsed.data);
}

// `length` characters of TOKEN_ALPHABET, each equally likely.
function randomToken(length: number, random: RandomBytes): string {
  let out = '';
  while (out.length < length) {
    for (const byte of random(length)) {
      if (byte < UNBIASED_BYTE_LIMIT && out.length < length) out += TOKEN_ALPHABET.charAt(byte % TOKEN_ALPHABET.length);
    }
  }
  return out;
}

// The gateway's secrets: those kept in `stateDir`, else new ones, written there first (0600,
// atomically, never over an existing file) and then returned. Every later call returns the same.
export async function loadOrCreateGatewaySecrets(stateDir: string, random: RandomBytes = randomBytes): Promise<GatewaySecrets> {
  const kept = await readGatewaySecrets(stateDir);
  if (kept !== undefined) return kept;
  const file = gatewaySecretsPath(stateDir);
  const fresh: GatewaySecretsFile = {
    version: 1,
    app_id: Buffer.from(random(APP_ID_BYTES)).toString('hex'),
    node_id: NODE_ID,
    admin_api_token: randomToken(ADMIN_TOKEN_LENGTH, random),
    app_launch_token: randomToken(LAUNCH_TOKEN_LENGTH, random),
  };
  const cannotWrite = (errno: string) =>
    new GatewaySecretsError('GATEWAY_SECRETS_IO', file, `cannot be written (${errno}); check that the state directory exists and is writable`);
  const written = await writeFileOnce(file, `${JSON.stringify(fresh, null, 2)}\n`).catch((err: unknown) => {
    throw cannotWrite(errnoOf(err));
  });
  if (written) return new GatewaySecrets(fresh);
  // Another caller wrote them first: theirs are the gateway's.
  const theirs = await readGatewaySecrets(stateDir);
  if (theirs === undefined) throw cannotWrite('EEXIST');
  return theirs;
}
