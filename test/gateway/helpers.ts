import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadGatewayConfig, type GatewayLoad, type GatewayLoadOptions } from '../../src/gateway/config.ts';
import type { GatewayConfigError } from '../../src/gateway/errors.ts';
import { defer } from '../helpers/cleanup.ts';

// The uid the files below are created with, which every load expects unless told otherwise.
export const OWNER = process.getuid?.() ?? 0;

// A token shaped like Cloudflare's; no message may ever hold it, nor its distinctive middle.
export const TOKEN = 'S3NT1NEL_cf-token-hunter2-0123456789abcd';
export const TOKEN_PART = 'hunter2';

// The smallest ACME file: a domain and an email (the token file is the default one beside it).
export const ACME = 'domain = "apps.example.com"\n[certificate]\nemail = "ops@example.com"\n';

// A fresh gateway.d of the test's own, removed when the test ends.
export async function gatewayDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gateway-d-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  return dir;
}

// Write `dir`/gateway.toml (mode 0644, as an editor leaves it) and return its path.
export async function writeToml(dir: string, text: string | Buffer, mode = 0o644): Promise<string> {
  const file = join(dir, 'gateway.toml');
  await writeFile(file, text);
  await chmod(file, mode);
  return file;
}

// Write the default token file `dir`/cloudflare.token (mode 0600) and return its path.
export async function writeToken(dir: string, text: string | Buffer = `${TOKEN}\n`, mode = 0o600): Promise<string> {
  const file = join(dir, 'cloudflare.token');
  await writeFile(file, text);
  await chmod(file, mode);
  return file;
}

// Load `file` as OWNER's, with `opts` on top.
export function load(file: string, opts: Partial<GatewayLoadOptions> = {}): Promise<GatewayLoad> {
  return loadGatewayConfig(file, { owner: OWNER, ...opts });
}

// The settings of a load that must have succeeded.
export function on(result: GatewayLoad): Extract<GatewayLoad, { kind: 'on' }> {
  assert.equal(result.kind, 'on', result.kind === 'invalid' ? result.error.message : result.kind);
  return result as Extract<GatewayLoad, { kind: 'on' }>;
}

// The error of a load that must have been refused with `code`: one line, starting with the file,
// never holding the token.
export function refused(result: GatewayLoad, code: string, file: string): GatewayConfigError {
  assert.equal(result.kind, 'invalid', `expected ${code}, got ${result.kind}`);
  const { error } = result as Extract<GatewayLoad, { kind: 'invalid' }>;
  assert.equal(error.code, code, error.message);
  assert.ok(error.message.startsWith(file), error.message);
  assert.ok(!error.message.includes('\n'), `one line: ${error.message}`);
  assert.ok(!error.message.includes(TOKEN_PART), `leaks the token: ${error.message}`);
  return error;
}
