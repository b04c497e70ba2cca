// Issue 17: the key behind every app's env_digest is made once per host, 0600, and a bad one
// stops the service with a message naming the file rather than giving digests from another key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ENV_DIGEST_KEY, envDigestKeyPath, openEnvDigester, readEnvDigester } from '../../src/status/env-digest.ts';
import { defer } from '../helpers/cleanup.ts';

async function stateDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'env-digest-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  return join(dir, 'state');
}

test('the key is made once (0600) and kept; hash reads it and makes none', async (t) => {
  const state = await stateDir(t);
  assert.equal(await readEnvDigester(state), undefined, 'no key before the service made one');
  const [a, b] = await Promise.all([openEnvDigester(state), openEnvDigester(state)]);
  const key = await readFile(envDigestKeyPath(state), 'utf8');
  assert.match(key, /^[0-9a-f]{64}\n$/);
  assert.equal((await stat(envDigestKeyPath(state))).mode & 0o777, 0o600);
  const envHash = 'c'.repeat(64);
  assert.equal(a(envHash), b(envHash), 'two at once agree on one key');
  assert.equal((await readEnvDigester(state))?.(envHash), a(envHash));
  assert.equal(a(undefined), null);
  assert.equal(await readFile(envDigestKeyPath(state), 'utf8'), key);
});

test('a key file that is not a key, or cannot be read, is ENV_DIGEST_KEY naming the file', async (t) => {
  const state = await stateDir(t);
  await mkdir(state, { recursive: true });
  await writeFile(envDigestKeyPath(state), 'not a key\n', { mode: 0o600 });
  await assert.rejects(openEnvDigester(state), { code: ENV_DIGEST_KEY, message: new RegExp(`^${envDigestKeyPath(state)}: the key of env_digest is not 32 bytes of lower-case hex; remove it`) });
  await rm(envDigestKeyPath(state));
  await mkdir(envDigestKeyPath(state));
  await assert.rejects(readEnvDigester(state), { code: ENV_DIGEST_KEY, message: /: the key of env_digest cannot be read \(EISDIR/ });
});
