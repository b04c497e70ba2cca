import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeStaleTemps, writeFileAtomic } from '../../src/fsx/atomic.ts';
import { defer } from '../helpers/cleanup.ts';

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'atomic-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('writeFileAtomic replaces the file with a new inode, the exact mode, and no temp left behind', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'status.json');
  await writeFile(path, 'old');
  const before = await stat(path);
  const umask = process.umask(0o077);
  try {
    await writeFileAtomic(path, '{"phase":"running"}\n', { mode: 0o644 });
  } finally {
    process.umask(umask);
  }
  assert.equal(await readFile(path, 'utf8'), '{"phase":"running"}\n');
  const after = await stat(path);
  assert.notEqual(after.ino, before.ino, 'renamed over, never rewritten in place');
  assert.equal(after.mode & 0o777, 0o644, 'the mode asked for, whatever the umask');
  assert.deepEqual(await readdir(dir), ['status.json']);
  await writeFileAtomic(path, new Uint8Array([1, 2]));
  assert.deepEqual([...(await readFile(path))], [1, 2]);
});

test('writeFileAtomic can hand the new file to another owner', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'auth-config.json');
  // Root can give the file away; anyone else can only "give" it to themselves.
  const root = process.getuid?.() === 0;
  const owner = root ? { uid: 4242, gid: 4243 } : { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  await writeFileAtomic(path, '{}', { mode: 0o640, owner });
  const st = await stat(path);
  assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [owner.uid, owner.gid, 0o640]);
});

test('a failed write throws and leaves neither the target nor a temp file', async (t) => {
  const dir = await tempDir(t);
  await assert.rejects(writeFileAtomic(join(dir, 'missing', 'x.json'), 'x'), { code: 'ENOENT' });
  await writeFile(join(dir, 'target'), 'keep');
  await assert.rejects(writeFileAtomic(join(dir, 'target', 'x'), 'x'), { code: 'ENOTDIR' });
  assert.deepEqual(await readdir(dir), ['target']);
});

test('an exclusive write creates the file, but never replaces one: EEXIST, the old bytes kept, no temp left', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'secrets.json');
  await writeFileAtomic(path, 'first', { mode: 0o600, exclusive: true });
  assert.equal(await readFile(path, 'utf8'), 'first');
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  assert.equal((await stat(path)).nlink, 1, 'the temp name is gone, so the file has one name');
  await assert.rejects(writeFileAtomic(path, 'second', { mode: 0o600, exclusive: true }), { code: 'EEXIST' });
  assert.equal(await readFile(path, 'utf8'), 'first');
  assert.deepEqual(await readdir(dir), ['secrets.json']);
});

test('removeStaleTemps removes only the temp files a crashed write leaves', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, '.web.json.tmp-123-abcd'), '{"partial');
  await writeFile(join(dir, 'web.json'), '{}');
  await writeFile(join(dir, '.hidden'), '');
  assert.deepEqual(await removeStaleTemps(dir), ['.web.json.tmp-123-abcd']);
  assert.deepEqual((await readdir(dir)).sort(), ['.hidden', 'web.json']);
});
