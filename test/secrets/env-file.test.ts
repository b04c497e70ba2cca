import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, copyFile, link, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { envPathBeside, readEnvFile, type EnvFileOptions } from '../../src/secrets/env-file.ts';
import { defer } from '../helpers/cleanup.ts';
import { BAD_SECRET_MODES } from '../helpers/secret-modes.ts';

const OWNER: EnvFileOptions = { owner: process.getuid?.() ?? 0 };
const SENTINEL = 'S3NT1NEL-hunter2-value';

async function appsDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'secrets-env-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  return dir;
}

// Write apps.d/shop.env with `mode` and return the compose path beside it.
async function writeEnv(dir: string, text: string | Buffer, mode = 0o600): Promise<string> {
  const envPath = join(dir, 'shop.env');
  await writeFile(envPath, text);
  await chmod(envPath, mode);
  return join(dir, 'shop.yaml');
}

test('envPathBeside puts NAME.env next to NAME.yaml or NAME.yml', () => {
  assert.equal(envPathBeside('/etc/dstack/apps.d/shop.yaml'), '/etc/dstack/apps.d/shop.env');
  assert.equal(envPathBeside('apps.d/web-2.yml'), 'apps.d/web-2.env');
});

test('no env file: null, the app simply has no secrets', async (t) => {
  const dir = await appsDir(t);
  assert.equal(await readEnvFile(join(dir, 'shop.yaml'), OWNER), null);
});

test('a 0600 or 0400 file owned by the owner is read: sorted keys, values, a values hash', async (t) => {
  const dir = await appsDir(t);
  for (const mode of [0o600, 0o400]) {
    const compose = await writeEnv(dir, 'export B="two words"\n# comment\nA=1\n', mode);
    const env = await readEnvFile(compose, OWNER);
    assert.deepEqual(env?.keys, ['A', 'B']);
    assert.deepEqual(env?.values, [{ key: 'A', value: '1' }, { key: 'B', value: 'two words' }]);
    assert.match(env?.valuesHash ?? '', /^[0-9a-f]{64}$/);
    assert.equal(env?.path, join(dir, 'shop.env'));
    await chmod(join(dir, 'shop.env'), 0o600);
  }
});

test('the values hash follows the values only: layout and order do not count, a value change does', async (t) => {
  const dir = await appsDir(t);
  const hashOf = async (text: string): Promise<string | undefined> => (await readEnvFile(await writeEnv(dir, text), OWNER))?.valuesHash;
  const base = await hashOf('A=1\nB=2\n');
  assert.equal(await hashOf('# reordered\nexport B="2"\n\nA=1 # one\n'), base);
  assert.notEqual(await hashOf('A=1\nB=3\n'), base);
  assert.notEqual(await hashOf('A=1\nB=2\nC=\n'), base);
  // Framing: a value holding "\nB=2" is not the pair B=2.
  assert.notEqual(await hashOf('A="1\\nB=2"\n'), base);
});

for (const [what, mode] of BAD_SECRET_MODES) {
  test(`a ${what} env file (mode ${mode.toString(8)}) is ENV_PERMS with the chmod/chown fix`, async (t) => {
    const dir = await appsDir(t);
    const compose = await writeEnv(dir, `A=${SENTINEL}\n`, mode);
    const envPath = join(dir, 'shop.env');
    await assert.rejects(readEnvFile(compose, { owner: 0 }), (err: unknown) => {
      assert.ok(err instanceof Error && 'code' in err);
      assert.equal(err.code, 'ENV_PERMS');
      assert.ok(err.message.startsWith(`${envPath}: `), err.message);
      assert.ok(err.message.includes(`chmod 600 ${envPath}; chown root ${envPath}`), err.message);
      return true;
    });
  });
}

test('an env file owned by another uid is ENV_PERMS', async (t) => {
  const dir = await appsDir(t);
  const compose = await writeEnv(dir, 'A=1\n');
  await assert.rejects(readEnvFile(compose, { owner: OWNER.owner + 1 }), { code: 'ENV_PERMS' });
});

test('a symlink, a directory or a FIFO named NAME.env is ENV_PERMS', async (t) => {
  const dir = await appsDir(t);
  const compose = join(dir, 'shop.yaml');
  const real = join(dir, 'real.env');
  await writeFile(real, 'A=1\n', { mode: 0o600 });
  await symlink(real, join(dir, 'shop.env'));
  await assert.rejects(readEnvFile(compose, OWNER), { code: 'ENV_PERMS' });
  await rm(join(dir, 'shop.env'));
  await mkdir(join(dir, 'shop.env'), { mode: 0o700 });
  await assert.rejects(readEnvFile(compose, OWNER), { code: 'ENV_PERMS' });
  await rm(join(dir, 'shop.env'), { recursive: true });
  execFileSync('mkfifo', ['-m', '600', join(dir, 'shop.env')]);
  await assert.rejects(readEnvFile(compose, OWNER), { code: 'ENV_PERMS' });
});

test('issue 13 item 6: a hard-linked NAME.env is ENV_HARDLINK; a copy of the same file is read', async (t) => {
  const dir = await appsDir(t);
  // A root-only secrets file elsewhere (here: beside apps.d), hard-linked in as shop.env.
  const outside = join(await appsDir(t), 'other-secrets');
  await writeFile(outside, `A=${SENTINEL}\n`, { mode: 0o600 });
  const envPath = join(dir, 'shop.env');
  await link(outside, envPath);
  const compose = join(dir, 'shop.yaml');
  await assert.rejects(readEnvFile(compose, OWNER), (err: unknown) => {
    assert.ok(err instanceof Error && 'code' in err);
    assert.equal(err.code, 'ENV_HARDLINK');
    assert.ok(err.message.startsWith(`${envPath}: has 2 names (it is hard-linked)`), err.message);
    assert.ok(err.message.includes('copy the file instead of hard-linking it'), err.message);
    assert.ok(!err.message.includes(SENTINEL));
    return true;
  });
  await rm(envPath);
  await copyFile(outside, envPath);
  assert.deepEqual((await readEnvFile(compose, OWNER))?.keys, ['A']);
});

test('a file over the size limit is ENV_READ; invalid UTF-8 is ENV_PARSE', async (t) => {
  const dir = await appsDir(t);
  const big = await writeEnv(dir, `A=${'x'.repeat(100)}\n`);
  await assert.rejects(readEnvFile(big, { ...OWNER, maxFileBytes: 64 }), { code: 'ENV_READ' });
  assert.ok(await readEnvFile(big, { ...OWNER, maxFileBytes: 104 }));
  const latin1 = await writeEnv(dir, Buffer.from('A=caf\xe9\n', 'latin1'));
  await assert.rejects(readEnvFile(latin1, OWNER), { code: 'ENV_PARSE' });
});

// Every way a bad env file holding SENTINEL can be refused.
const SENTINEL_CASES: ReadonlyArray<readonly [string, string | Buffer, number, EnvFileOptions]> = [
  ['no =', `${SENTINEL}\n`, 0o600, OWNER],
  ['bad name', `${SENTINEL}-X=1\n`, 0o600, OWNER],
  ['bad name with value', `MY-KEY=${SENTINEL}\n`, 0o600, OWNER],
  ['duplicate', `A=1\nA=${SENTINEL}\n`, 0o600, OWNER],
  ['unterminated quote', `A="${SENTINEL}\n`, 0o600, OWNER],
  ['text after quote', `A="x"${SENTINEL}\n`, 0o600, OWNER],
  ['invalid UTF-8', Buffer.concat([Buffer.from(`A=${SENTINEL}`), Buffer.from([0xff])]), 0o600, OWNER],
  ['too large', `A=${SENTINEL}${'x'.repeat(64)}\n`, 0o600, { ...OWNER, maxFileBytes: 32 }],
  ['world-readable', `A=${SENTINEL}\n`, 0o644, OWNER],
  ['wrong owner', `A=${SENTINEL}\n`, 0o600, { owner: OWNER.owner + 1 }],
];

test('sentinel: no error from a bad env file carries its value, in any rendering', async (t) => {
  const dir = await appsDir(t);
  for (const [what, text, mode, options] of SENTINEL_CASES) {
    const compose = await writeEnv(dir, text, mode);
    const err: unknown = await readEnvFile(compose, options).then(
      () => assert.fail(`${what}: was accepted`),
      (e: unknown) => e,
    );
    const renderings = [String(err), inspect(err, { depth: 10 }), JSON.stringify(err), err instanceof Error ? (err.stack ?? '') : ''];
    for (const text of renderings) assert.ok(!text.includes(SENTINEL) && !text.includes('hunter2'), `${what}: leaks the value: ${text}`);
    await rm(join(dir, 'shop.env'));
  }
});
