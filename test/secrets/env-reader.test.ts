// Issue 18: NAME.env outcomes kept between passes, by the stat that proves them current.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createEnvFileReader } from '../../src/secrets/env-file.ts';
import { SecretsError } from '../../src/secrets/errors.ts';
import { defer } from '../helpers/cleanup.ts';

const owner = process.getuid?.() ?? 0;

// A temp apps.d with shop.env holding `text` (mode 0600); returns the compose path beside it.
async function shop(t: TestContext, text: string): Promise<{ compose: string; env: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'env-reader-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  const env = join(dir, 'shop.env');
  await writeFile(env, text, { mode: 0o600 });
  await chmod(env, 0o600);
  return { compose: join(dir, 'shop.yml'), env };
}

const code = (err: unknown) => (err instanceof SecretsError ? err.code : String(err));

test('without recheck the last outcome stands with no look at the file; a recheck sees the change', async (t) => {
  const { compose, env } = await shop(t, 'A=1\n');
  const reader = createEnvFileReader({ owner });
  assert.deepEqual((await reader.read(compose, true))?.values, [{ key: 'A', value: '1' }]);
  // A look would refuse it now (mode 0644) or read the new value.
  await writeFile(env, 'A=2\n');
  await chmod(env, 0o644);
  assert.deepEqual((await reader.read(compose, false))?.values, [{ key: 'A', value: '1' }], 'an event pass with no event for shop.env');
  await assert.rejects(reader.read(compose, true), (err) => code(err) === 'ENV_PERMS');
  assert.equal(await reader.read(compose, false).catch(code), 'ENV_PERMS', 'the refusal is kept too');
  await unlink(env);
  assert.equal(await reader.read(compose, true), null, 'gone: no secrets');
});

test('an unchanged file read a second after its last change is kept; one read within that second is read again', async (t) => {
  const { compose } = await shop(t, 'A=1\n');
  const racy = createEnvFileReader({ owner });
  const first = await racy.read(compose, true);
  assert.notEqual(await racy.read(compose, true), first, 'read within a second of its change: read again, not kept');
  const later = createEnvFileReader({ owner, wallNow: () => Date.now() + 5000 });
  const kept = await later.read(compose, true);
  assert.equal(await later.read(compose, true), kept, 'the same stat and a read well after the change: kept');
});

test('forget drops the env file of an app no longer listed or settled', async (t) => {
  const { compose, env } = await shop(t, 'A=1\n');
  const reader = createEnvFileReader({ owner });
  await reader.read(compose, true);
  assert.equal(reader.holds(compose), true);
  reader.forget(compose);
  assert.equal(reader.holds(compose), false);
  await unlink(env);
  assert.equal(await reader.read(compose, false), null, 'nothing kept: it looks at the file');
});

// Issue 18: a resync's look outside the pass names the env files a read would look at again.
test('differences names a NAME.env changed, chmodded, removed or come back since its outcome, and one with none held', async (t) => {
  const { compose, env } = await shop(t, 'A=1\n');
  const reader = createEnvFileReader({ owner, wallNow: () => Date.now() + 5000 });
  const names = async (...composePaths: string[]) => [...(await reader.differences(composePaths))].sort();
  const other = join(dirname(compose), 'other.yml');
  assert.deepEqual(await names(compose, other), ['other.env', 'shop.env'], 'nothing held yet');
  await reader.read(compose, true);
  assert.deepEqual(await names(compose), [], 'held and unchanged');
  // The same size and mtime: only the ctime tells.
  const { atime, mtime } = await stat(env);
  await writeFile(env, 'A=2\n');
  await utimes(env, atime, mtime);
  assert.deepEqual(await names(compose), ['shop.env'], 'rewritten');
  assert.deepEqual((await reader.read(compose, true))?.values, [{ key: 'A', value: '2' }]);
  assert.deepEqual(await names(compose), []);
  await chmod(env, 0o644);
  assert.deepEqual(await names(compose), ['shop.env'], 'chmodded');
  await assert.rejects(reader.read(compose, true), (err) => code(err) === 'ENV_PERMS');
  assert.deepEqual(await names(compose), [], 'a refusal is kept by its stat too');
  await unlink(env);
  assert.deepEqual(await names(compose), ['shop.env'], 'removed');
  assert.equal(await reader.read(compose, true), null);
  assert.deepEqual(await names(compose), []);
  await writeFile(env, 'A=3\n', { mode: 0o600 });
  assert.deepEqual(await names(compose), ['shop.env'], 'come back');
});

test('differences names an env file read within a second of its last change, changed or not', async (t) => {
  const { compose } = await shop(t, 'A=1\n');
  const reader = createEnvFileReader({ owner });
  await reader.read(compose, true);
  assert.deepEqual([...(await reader.differences([compose]))], ['shop.env']);
});
