// The files of gateway.d: gateway.toml held to an app file's rules, the Cloudflare token file to
// NAME.env's, each checked on real files, links and FIFOs; and the token in no message or log.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chown, link, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { inspect } from 'node:util';
import type { GatewayLoad } from '../../src/gateway/config.ts';
import { BAD_SECRET_MODES } from '../helpers/secret-modes.ts';
import { ACME, gatewayDir, load, on, OWNER, refused, TOKEN, TOKEN_PART, writeToken, writeToml } from './helpers.ts';

const OTHER_UID = OWNER + 1000;

test('gateway.toml may be world-readable (0644) but not group- or world-writable', async (t) => {
  const dir = await gatewayDir(t);
  on(await load(await writeToml(dir, '', 0o644), { hostAddress: '203.0.113.7' }));
  for (const mode of [0o664, 0o646]) {
    const file = await writeToml(dir, '', mode);
    const err = refused(await load(file), 'GATEWAY_CONFIG_UNSAFE', file);
    assert.match(err.message, /: is group- or world-writable \(mode 06[46][46]\), so others could change the gateway's settings; run: chmod go-w /);
  }
});

test('gateway.toml owned by another uid is refused with the chown; the owner is configurable', { skip: OWNER !== 0 && 'needs root to chown' }, async (t) => {
  const dir = await gatewayDir(t);
  const file = await writeToml(dir, '');
  await chown(file, OTHER_UID, OTHER_UID);
  const err = refused(await load(file), 'GATEWAY_CONFIG_UNSAFE', file);
  assert.ok(err.message.endsWith(`: is owned by uid ${OTHER_UID}, not by root (uid 0); run: chown root ${file}`), err.message);
  on(await load(file, { owner: OTHER_UID, hostAddress: '203.0.113.7' }));
});

test('gateway.toml as a symlink, a hard link, a directory or a FIFO is refused', async (t) => {
  const dir = await gatewayDir(t);
  const file = join(dir, 'gateway.toml');
  const real = join(dir, 'real.toml');
  await writeFile(real, '');
  await symlink(real, file);
  assert.match(refused(await load(file), 'GATEWAY_CONFIG_UNSAFE', file).message, /: is a symlink, .*cp --remove-destination/);
  await rm(file);
  await link(real, file);
  assert.match(refused(await load(file), 'GATEWAY_CONFIG_UNSAFE', file).message, /: has 2 names \(it is hard-linked\).*; copy it instead/);
  await rm(file);
  await mkdir(file);
  assert.match(refused(await load(file), 'GATEWAY_CONFIG_UNSAFE', file).message, /: is a directory; replace it with a regular file$/);
  await rm(file, { recursive: true });
  execFileSync('mkfifo', ['-m', '644', file]);
  assert.match(refused(await load(file), 'GATEWAY_CONFIG_UNSAFE', file).message, /: is a named pipe; /);
});

test('gateway.toml that is not UTF-8 or is far too large is invalid', async (t) => {
  const dir = await gatewayDir(t);
  const file = await writeToml(dir, Buffer.from('domain = "caf\xe9.example"\n', 'latin1'));
  assert.match(refused(await load(file), 'GATEWAY_CONFIG_INVALID', file).message, /: is not valid UTF-8; save it as UTF-8$/);
  await writeToml(dir, `# ${'x'.repeat(70 * 1024)}\n`);
  assert.match(refused(await load(file), 'GATEWAY_CONFIG_INVALID', file).message, /: is larger than 65536 bytes; check that it is the right file/);
});

test('acme without its token file: GATEWAY_TOKEN_MISSING names the key, the file and how to create it', async (t) => {
  const dir = await gatewayDir(t);
  const file = await writeToml(dir, ACME);
  const tokenFile = join(dir, 'cloudflare.token');
  const err = refused(await load(file), 'GATEWAY_TOKEN_MISSING', file);
  assert.ok(err.message.startsWith(`${file}: [certificate] token_file: ${tokenFile} does not exist, but an ACME certificate needs a Cloudflare API token`), err.message);
  assert.ok(err.message.includes(`run install -m 600 -o root /dev/null ${tokenFile} and write the token into it, or set [certificate] mode = "self-signed"`), err.message);
});

test('self-signed mode reads no token file, even a bad one', async (t) => {
  const dir = await gatewayDir(t);
  await writeToken(dir, TOKEN, 0o644);
  assert.equal(on(await load(await writeToml(dir, 'domain = "apps.example.com"\n[certificate]\nmode = "self-signed"\n'))).token, null);
});

test('a token file of mode 0600 or 0400 is read; any other mode is GATEWAY_TOKEN_UNSAFE with the chmod, as for NAME.env', async (t) => {
  const dir = await gatewayDir(t);
  const file = await writeToml(dir, ACME);
  const tokenFile = join(dir, 'cloudflare.token');
  for (const mode of [0o600, 0o400]) {
    await rm(tokenFile, { force: true });
    await writeToken(dir, TOKEN, mode);
    assert.equal(on(await load(file)).token?.reveal(), TOKEN);
  }
  for (const [what, mode] of BAD_SECRET_MODES) {
    await writeToken(dir, TOKEN, mode);
    const err = refused(await load(file), 'GATEWAY_TOKEN_UNSAFE', file);
    const shown = mode.toString(8).padStart(4, '0');
    assert.ok(err.message.endsWith(`: [certificate] token_file: ${tokenFile} has mode ${shown}, but a token file must be mode 0600 or 0400 so only its owner can read it; run: chmod 600 ${tokenFile}`), `${what}: ${err.message}`);
  }
});

test('a token file owned by another uid is GATEWAY_TOKEN_UNSAFE with the chown', { skip: OWNER !== 0 && 'needs root to chown' }, async (t) => {
  const dir = await gatewayDir(t);
  const file = await writeToml(dir, ACME);
  const tokenFile = await writeToken(dir);
  await chown(tokenFile, OTHER_UID, OTHER_UID);
  const err = refused(await load(file), 'GATEWAY_TOKEN_UNSAFE', file);
  assert.ok(err.message.endsWith(`: [certificate] token_file: ${tokenFile} is owned by uid ${OTHER_UID}, not by root (uid 0); run: chown root ${tokenFile}`), err.message);
});

test('a token file that is a symlink (even to a good file in gateway.d), a hard link, a directory or a FIFO is GATEWAY_TOKEN_UNSAFE', async (t) => {
  const dir = await gatewayDir(t);
  const file = await writeToml(dir, ACME);
  const tokenFile = join(dir, 'cloudflare.token');
  const real = join(dir, 'real.token');
  await writeFile(real, TOKEN, { mode: 0o600 });
  await symlink(real, tokenFile);
  assert.match(refused(await load(file), 'GATEWAY_TOKEN_UNSAFE', file).message, /cloudflare\.token is a symlink, but it must be a regular file in its own right; replace the link with a copy of its target: run cp --remove-destination/);
  await rm(tokenFile);
  await link(real, tokenFile);
  assert.match(refused(await load(file), 'GATEWAY_TOKEN_UNSAFE', file).message, /cloudflare\.token has 2 names \(it is hard-linked\), so it may be a file from elsewhere on the host; copy it instead/);
  await rm(tokenFile);
  await mkdir(tokenFile, { mode: 0o700 });
  assert.match(refused(await load(file), 'GATEWAY_TOKEN_UNSAFE', file).message, /cloudflare\.token is a directory; /);
  await rm(tokenFile, { recursive: true });
  execFileSync('mkfifo', ['-m', '600', tokenFile]);
  assert.match(refused(await load(file), 'GATEWAY_TOKEN_UNSAFE', file).message, /cloudflare\.token is a named pipe; /);
});

// [what, file contents, what the message says]
const BAD_CONTENTS: ReadonlyArray<readonly [string, string, RegExp]> = [
  ['empty', '\n', /is empty; write the Cloudflare API token into it$/],
  ['a dotenv line', `CF_API_TOKEN=${TOKEN}\n`, /holds a NAME=value line, but it must hold only the token; /],
  ['two lines', `${TOKEN}\n${TOKEN}\n`, /holds more than one token .*; write only the token into it, on one line$/],
  ['a space', `Bearer ${TOKEN}\n`, /holds more than one token /],
  ['too large', `${TOKEN}${'x'.repeat(5000)}`, /is larger than 4096 bytes; it must hold only the token$/],
];

test('a token file that is not one token is GATEWAY_TOKEN_INVALID; surrounding white space is fine', async (t) => {
  const dir = await gatewayDir(t);
  const file = await writeToml(dir, ACME);
  for (const [what, text, says] of BAD_CONTENTS) {
    await writeToken(dir, text);
    assert.match(refused(await load(file), 'GATEWAY_TOKEN_INVALID', file).message, says, what);
  }
  await writeToken(dir, `  ${TOKEN}\r\n\n`);
  assert.equal(on(await load(file)).token?.reveal(), TOKEN);
});

// Every rendering a log line or a crash report could make of a value.
function renderings(value: unknown): string[] {
  const err = value instanceof Error ? [value.stack ?? '', String(value.cause)] : [];
  return [String(value), inspect(value, { depth: 10, showHidden: true }), JSON.stringify(value) ?? '', ...err];
}

function assertNoToken(what: string, value: unknown): void {
  for (const text of renderings(value)) assert.ok(!text.includes(TOKEN_PART), `${what} leaks the token: ${text}`);
}

test('sentinel: the token is in no refusal, and a loaded config prints, inspects and serialises without it', async (t) => {
  const dir = await gatewayDir(t);
  const file = await writeToml(dir, ACME);
  const cases: Array<[string, string, number]> = [
    ...BAD_SECRET_MODES.map(([what, mode]): [string, string, number] => [what, TOKEN, mode]),
    ...BAD_CONTENTS.map(([what, text]): [string, string, number] => [what, text, 0o600]),
  ];
  for (const [what, text, mode] of cases) {
    await writeToken(dir, text, mode);
    const result: GatewayLoad = await load(file);
    assert.equal(result.kind, 'invalid', what);
    assertNoToken(what, result);
    if (result.kind === 'invalid') assertNoToken(what, result.error);
  }
  await writeToken(dir);
  const gw = on(await load(file));
  assert.equal(gw.token?.reveal(), TOKEN);
  assertNoToken('the loaded config', gw);
  assertNoToken('the token itself', gw.token);
  assert.equal(JSON.parse(JSON.stringify(gw)).token, '[redacted]');
});
