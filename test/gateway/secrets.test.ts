// The gateway's secrets: generated once into <state_dir>/gateway/secrets.json (0600), the same
// values on every later call, a damaged file refused and never regenerated, and no token in any
// message, log line or JSON.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { inspect } from 'node:util';
import { GatewaySecretsError } from '../../src/gateway/errors.ts';
import { gatewaySecretsPath, loadOrCreateGatewaySecrets, readGatewaySecrets, type GatewaySecrets } from '../../src/gateway/secrets.ts';
import { defer } from '../helpers/cleanup.ts';

// A state directory of the test's own, removed when it ends.
async function stateDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gateway-secrets-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  return dir;
}

// Every call returns 248, 0, 255, 61, 248, 0, ... from the start: the token generator must drop
// 248 and 255 (from 248 up a byte would favour the first letters) and keep 0 ('A') and 61 ('9').
function patterned(size: number): Uint8Array {
  const pattern = [248, 0, 255, 61];
  return Uint8Array.from({ length: size }, (_, i) => pattern[i % pattern.length] ?? 0);
}

// A secrets file as loadOrCreate writes it, with `override` on top.
function fileText(override: Record<string, unknown> = {}): string {
  const base = { version: 1, app_id: 'ab'.repeat(20), node_id: 1, admin_api_token: 'Q'.repeat(48), app_launch_token: 'Z'.repeat(32) };
  return `${JSON.stringify({ ...base, ...override }, null, 2)}\n`;
}

function tokensOf(secrets: GatewaySecrets): [string, string] {
  return [secrets.adminApiToken(), secrets.appLaunchToken()];
}

async function rejectsCorrupt(dir: string, pattern: RegExp, secretText: string): Promise<void> {
  const file = gatewaySecretsPath(dir);
  await assert.rejects(loadOrCreateGatewaySecrets(dir), (err: unknown) => {
    assert.ok(err instanceof GatewaySecretsError);
    assert.equal(err.code, 'GATEWAY_SECRETS_CORRUPT');
    assert.ok(err.message.startsWith(`${file}: `), err.message);
    assert.match(err.message, pattern);
    assert.match(err.message, /never regenerated: restore it from a backup; or, to start the gateway afresh, remove the dstack-gateway CVM and this file/);
    assert.ok(!err.message.includes(secretText), `leaks the file's text: ${err.message}`);
    return true;
  });
}

test('the first call writes <state_dir>/gateway/secrets.json (0600, its directory 0700); later calls return the same values', async (t) => {
  const dir = await stateDir(t);
  const first = await loadOrCreateGatewaySecrets(dir);
  const file = join(dir, 'gateway', 'secrets.json');
  assert.equal(gatewaySecretsPath(dir), file);
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.equal((await stat(join(dir, 'gateway'))).mode & 0o777, 0o700);
  assert.match(first.appId, /^[0-9a-f]{40}$/);
  assert.equal(first.nodeId, 1);
  assert.match(first.adminApiToken(), /^[A-Za-z0-9]{48}$/);
  assert.match(first.appLaunchToken(), /^[A-Za-z0-9]{32}$/);
  const before = await stat(file);
  const again = await loadOrCreateGatewaySecrets(dir);
  assert.deepEqual([again.appId, again.nodeId, ...tokensOf(again)], [first.appId, first.nodeId, ...tokensOf(first)]);
  const after = await stat(file);
  assert.deepEqual([after.ino, after.mtimeMs], [before.ino, before.mtimeMs], 'a reload does not rewrite the file');
  const read = await readGatewaySecrets(dir);
  assert.deepEqual(read === undefined ? undefined : [read.appId, ...tokensOf(read)], [first.appId, ...tokensOf(first)]);
  const onDisk: unknown = JSON.parse(await readFile(file, 'utf8'));
  assert.deepEqual(onDisk, { version: 1, app_id: first.appId, node_id: 1, admin_api_token: first.adminApiToken(), app_launch_token: first.appLaunchToken() });
});

test('readGatewaySecrets creates nothing: undefined when none were generated', async (t) => {
  const dir = await stateDir(t);
  assert.equal(await readGatewaySecrets(dir), undefined);
  await assert.rejects(stat(join(dir, 'gateway')), { code: 'ENOENT' });
});

test('tokens are unbiased letters and digits: bytes from 248 up are dropped; the app id is 20 random bytes in hex', async (t) => {
  const secrets = await loadOrCreateGatewaySecrets(await stateDir(t), patterned);
  assert.equal(secrets.appId, 'f800ff3d'.repeat(5));
  // Each call keeps 2 of every 4 bytes: "A9" per 4 bytes asked for, until the token is long enough.
  assert.equal(secrets.adminApiToken(), 'A9'.repeat(24));
  assert.equal(secrets.appLaunchToken(), 'A9'.repeat(16));
});

test('concurrent first calls agree on one set of secrets, the one on disk', async (t) => {
  const dir = await stateDir(t);
  const all = await Promise.all(Array.from({ length: 6 }, () => loadOrCreateGatewaySecrets(dir)));
  const kept = await readGatewaySecrets(dir);
  assert.ok(kept !== undefined);
  for (const secrets of all) assert.deepEqual([secrets.appId, ...tokensOf(secrets)], [kept.appId, ...tokensOf(kept)]);
});

test('a file that is not JSON is GATEWAY_SECRETS_CORRUPT, kept as it is, and its text is not quoted', async (t) => {
  const dir = await stateDir(t);
  const file = gatewaySecretsPath(dir);
  await mkdir(join(dir, 'gateway'));
  // V8's JSON.parse message would quote this text.
  const text = '{"admin_api_token": "LEAKYtoken0123456789abcdefghijklmnopqrstuvwxyzAB"';
  await writeFile(file, text, { mode: 0o600 });
  await rejectsCorrupt(dir, /: is not valid JSON\. It holds the gateway CVM's app id and launch token/, 'LEAKY');
  assert.equal(await readFile(file, 'utf8'), text, 'never regenerated');
});

test('a file of the wrong shape names each bad key and rule, never the value', async (t) => {
  const dir = await stateDir(t);
  const file = gatewaySecretsPath(dir);
  await mkdir(join(dir, 'gateway'));
  const cases: ReadonlyArray<readonly [Record<string, unknown>, RegExp]> = [
    [{ admin_api_token: 'LEAKY-short' }, /\(admin_api_token must be 48 letters and digits\)/],
    [{ app_launch_token: 'LEAKY'.repeat(8) }, /\(app_launch_token must be 32 letters and digits\)/],
    [{ app_id: '0xLEAKY' }, /\(app_id must be 40 lower-case hex digits\)/],
    [{ node_id: 0 }, /\(node_id must be at least 1\)/],
    [{ version: 2 }, /\(version must be 1 \(a newer supervisor wrote this file\?\)\)/],
  ];
  for (const [override, pattern] of cases) {
    await writeFile(file, fileText(override), { mode: 0o600 });
    await rejectsCorrupt(dir, pattern, 'LEAKY');
  }
  await writeFile(file, '[]', { mode: 0o600 });
  await rejectsCorrupt(dir, /: is not the gateway's secrets \(/, 'LEAKY');
});

test('a secrets path that cannot be read or written is GATEWAY_SECRETS_IO, naming the errno', async (t) => {
  const dir = await stateDir(t);
  await mkdir(gatewaySecretsPath(dir), { recursive: true });
  await assert.rejects(loadOrCreateGatewaySecrets(dir), { code: 'GATEWAY_SECRETS_IO', message: `${gatewaySecretsPath(dir)}: cannot be read (EISDIR); check the file and its directory` });
  const blocked = await stateDir(t);
  await writeFile(join(blocked, 'gateway'), '');
  await assert.rejects(loadOrCreateGatewaySecrets(blocked), { code: 'GATEWAY_SECRETS_IO', message: /: cannot be read \(ENOTDIR\)/ });
});

test('printing, inspecting, logging or JSON-encoding the secrets shows the app id and "[redacted]", never a token', async (t) => {
  const secrets = await loadOrCreateGatewaySecrets(await stateDir(t));
  const shown = [JSON.stringify(secrets), JSON.stringify({ secrets }), inspect(secrets), inspect({ nested: [secrets] }), String(secrets), `${secrets}`];
  for (const text of shown) {
    assert.ok(text.includes(secrets.appId), text);
    assert.ok(text.includes('[redacted]'), text);
    for (const token of tokensOf(secrets)) assert.ok(!text.includes(token), `leaks a token: ${text}`);
  }
  assert.deepEqual(JSON.parse(JSON.stringify(secrets)), { appId: secrets.appId, nodeId: 1, adminApiToken: '[redacted]', appLaunchToken: '[redacted]' });
});
