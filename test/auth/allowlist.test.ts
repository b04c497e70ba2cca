import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openAllowlist, type AllowlistWritten } from '../../src/auth/allowlist.ts';
import { acquireLock, lockPathFor } from '../../src/auth/lock.ts';
import { waitForBlockedWaiter } from './proc-locks.ts';
import { defer } from '../helpers/cleanup.ts';

const INITIAL = `{
  "gatewayAppId": "",
  "osImages": ["aa"],
  "apps": {
    "f00d": { "composeHashes": ["beef"], "devices": [], "allowAnyDevice": false }
  },
  "x-operator": { "note": "keep me" }
}
`;

type Ctx = { after: (fn: () => unknown) => void };

async function setup(t: Ctx, text = INITIAL): Promise<{ dir: string; path: string; writes: AllowlistWritten[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'auth-allowlist-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'auth-config.json');
  await writeFile(path, text);
  return { dir, path, writes: [] };
}

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

test('N edits made in the same tick coalesce into one write', async (t) => {
  const { path, writes } = await setup(t);
  const allowlist = openAllowlist(path, { onWrite: (e) => writes.push(e) });
  defer(t, () => allowlist.close());
  const inodeBefore = (await stat(path)).ino;

  await Promise.all(Array.from({ length: 50 }, (_, i) => allowlist.addHash(hex(i, 40), hex(i, 64))));

  assert.deepEqual(writes, [{ path, edits: 50 }]);
  assert.notEqual((await stat(path)).ino, inodeBefore, 'replaced by rename, not rewritten in place');
  const apps = JSON.parse(await readFile(path, 'utf8')).apps;
  assert.equal(Object.keys(apps).length, 51);
  assert.deepEqual(apps[hex(7, 40)].composeHashes, [hex(7, 64)]);
});

test('edits arriving while a write waits for the lock form exactly one next batch', async (t) => {
  const { path, writes } = await setup(t);
  const allowlist = openAllowlist(path, { onWrite: (e) => writes.push(e) });
  defer(t, () => allowlist.close());
  const blocker = await acquireLock(lockPathFor(path));

  const first = allowlist.addHash('a1', 'b1');
  await waitForBlockedWaiter(lockPathFor(path));
  const rest = Array.from({ length: 20 }, (_, i) => allowlist.addHash(hex(i, 40), 'cc'));
  await blocker.release();
  await Promise.all([first, ...rest]);

  assert.deepEqual(
    writes.map((w) => w.edits),
    [1, 20],
  );
});

test('an edit that changes nothing does not rewrite the file', async (t) => {
  const { path, writes } = await setup(t);
  const allowlist = openAllowlist(path, { onWrite: (e) => writes.push(e) });
  defer(t, () => allowlist.close());
  await allowlist.addHash('0xF00D', 'BEEF');
  await allowlist.removeHash('f00d', 'dead');
  await allowlist.removeApp('abcd');
  assert.deepEqual(writes, []);
  assert.equal(await readFile(path, 'utf8'), INITIAL);
});

test('an edit that changes nothing settles without the lock, even while another process holds it', async (t) => {
  const { path, writes } = await setup(t);
  const allowlist = openAllowlist(path, { onWrite: (e) => writes.push(e), lock: { timeoutMs: 200 } });
  defer(t, () => allowlist.close());
  const blocker = await acquireLock(lockPathFor(path));
  defer(t, () => blocker.release());
  await allowlist.addHash('f00d', 'beef');
  await allowlist.setHashes('f00d', ['beef']);
  await assert.rejects(allowlist.addHash('f00d', 'cafe'), { code: 'AUTH_LOCK_TIMEOUT' });
  assert.deepEqual(writes, []);
});

test('a change whose write fails is not remembered: the next read sees the file as it is', async (t) => {
  const { path, writes } = await setup(t);
  const allowlist = openAllowlist(path, { onWrite: (e) => writes.push(e), lock: { timeoutMs: 200 } });
  defer(t, () => allowlist.close());
  const blocker = await acquireLock(lockPathFor(path));
  await assert.rejects(allowlist.addHash('f00d', 'cafe'), { code: 'AUTH_LOCK_TIMEOUT' });
  await blocker.release();
  await allowlist.addHash('f00d', 'cafe');
  assert.equal(writes.length, 1, 'the hash that failed to land is written on the next try');
  assert.deepEqual(JSON.parse(await readFile(path, 'utf8')).apps.f00d.composeHashes, ['beef', 'cafe']);
  assert.deepEqual((await allowlist.read()).apps['f00d']?.composeHashes, ['beef', 'cafe']);
});

test('an edit made by another writer is seen at once, though the parse is cached', async (t) => {
  const { path } = await setup(t);
  const allowlist = openAllowlist(path);
  defer(t, () => allowlist.close());
  assert.deepEqual((await allowlist.read()).apps['f00d']?.composeHashes, ['beef']);
  const other = openAllowlist(path);
  await other.addHash('f00d', 'cafe');
  await other.close();
  assert.deepEqual((await allowlist.read()).apps['f00d']?.composeHashes, ['beef', 'cafe']);
});

test('foreign keys and apps survive add, remove and removeApp', async (t) => {
  const { path } = await setup(t);
  const allowlist = openAllowlist(path);
  defer(t, () => allowlist.close());
  await allowlist.addHash('0xABCD', '0x12');
  await allowlist.addHash('abcd', '34');
  await allowlist.removeHash('abcd', '12');
  let file = JSON.parse(await readFile(path, 'utf8'));
  assert.deepEqual(Object.keys(file), ['gatewayAppId', 'osImages', 'apps', 'x-operator']);
  assert.deepEqual(file.apps, {
    f00d: { composeHashes: ['beef'], devices: [], allowAnyDevice: false },
    abcd: { composeHashes: ['34'], devices: [], allowAnyDevice: true },
  });
  await allowlist.removeApp('ABCD');
  file = JSON.parse(await readFile(path, 'utf8'));
  assert.deepEqual(file, JSON.parse(INITIAL));
  assert.deepEqual((await allowlist.read()).apps.f00d?.composeHashes, ['beef']);
});

test('mode and owner of the file are kept; no temp file is left behind', async (t) => {
  const { dir, path } = await setup(t);
  // 0660 would lose group write under the usual 022 umask if the temp file's mode were left to open().
  await chmod(path, 0o660);
  // As root (CI, the service) hand the file to another owner; otherwise keep our own ids.
  const owner = process.getuid?.() === 0 ? { uid: 4242, gid: 4343 } : { uid: (await stat(path)).uid, gid: (await stat(path)).gid };
  await chown(path, owner.uid, owner.gid);
  const allowlist = openAllowlist(path);
  defer(t, () => allowlist.close());
  await allowlist.addHash('ab', 'cd');
  const after = await stat(path);
  assert.equal(after.mode & 0o7777, 0o660);
  assert.deepEqual({ uid: after.uid, gid: after.gid }, owner);
  assert.deepEqual((await readdir(dir)).sort(), ['auth-config.json', 'auth-config.json.lock']);
});

test('a symlinked allowlist stays a symlink; the file it points to is replaced', async (t) => {
  const { dir, path } = await setup(t);
  const realDir = join(dir, 'real');
  await mkdir(realDir);
  const real = join(realDir, 'auth-config.json');
  await writeFile(real, INITIAL);
  await rm(path);
  await symlink(real, path);
  const allowlist = openAllowlist(path);
  defer(t, () => allowlist.close());
  await allowlist.addHash('ab', 'cd');
  assert.ok((await lstat(path)).isSymbolicLink());
  assert.deepEqual(JSON.parse(await readFile(real, 'utf8')).apps.ab.composeHashes, ['cd']);
});

test('a missing file is AUTH_MISSING and is not created', async (t) => {
  const { path } = await setup(t);
  await rm(path);
  const allowlist = openAllowlist(path);
  defer(t, () => allowlist.close());
  for (const attempt of [() => allowlist.addHash('ab', 'cd'), () => allowlist.read()]) {
    await assert.rejects(attempt(), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'AUTH_MISSING');
      assert.ok(err.message.startsWith(path), err.message);
      assert.match(err.message, /init/);
      return true;
    });
  }
  await assert.rejects(stat(path), { code: 'ENOENT' });
});

test('an invalid file is AUTH_INVALID for every edit of the batch and is left byte for byte', async (t) => {
  const broken = '{ "apps": { "ab": { "composeHashes": "cd" } }, "extra": 1 }';
  const { path } = await setup(t, broken);
  const allowlist = openAllowlist(path);
  defer(t, () => allowlist.close());
  const results = await Promise.allSettled([allowlist.addHash('ab', 'ef'), allowlist.removeApp('ab')]);
  for (const result of results) {
    assert.equal(result.status, 'rejected');
    assert.equal((result.reason as { code?: string }).code, 'AUTH_INVALID');
  }
  assert.equal(await readFile(path, 'utf8'), broken);
});

test('non-hex ids are AUTH_BAD_HEX before any I/O; edits after close are AUTH_CLOSED', async (t) => {
  const { path, writes } = await setup(t);
  const allowlist = openAllowlist(path, { onWrite: (e) => writes.push(e) });
  await assert.rejects(allowlist.addHash('not-hex', 'ab'), { code: 'AUTH_BAD_HEX' });
  await assert.rejects(allowlist.addHash('ab', '0x'), { code: 'AUTH_BAD_HEX' });
  await assert.rejects(allowlist.removeApp(''), { code: 'AUTH_BAD_HEX' });
  const pending = allowlist.addHash('ab', 'cd');
  await allowlist.close();
  await pending;
  await assert.rejects(allowlist.addHash('ab', 'ef'), { code: 'AUTH_CLOSED' });
  assert.equal(writes.length, 1);
});

test('setHashes leaves exactly the given hashes and keeps the rest of the entry', async (t) => {
  const { path } = await setup(t);
  const allowlist = openAllowlist(path);
  defer(t, () => allowlist.close());
  await allowlist.addHash('f00d', 'cafe');
  await allowlist.setHashes('0xF00D', ['CAFE']);
  const after = JSON.parse(await readFile(path, 'utf8'));
  assert.deepEqual(after.apps.f00d, { composeHashes: ['cafe'], devices: [], allowAnyDevice: false });
  await allowlist.setHashes('abcd', ['12']);
  assert.deepEqual(JSON.parse(await readFile(path, 'utf8')).apps.abcd, { composeHashes: ['12'], devices: [], allowAnyDevice: true });
  assert.equal(JSON.parse(await readFile(path, 'utf8'))['x-operator'].note, 'keep me');
});

// Found by the soak: the parse was cached by (device, inode, size, mtime), but ext4 hands a freed
// inode number to the next new file and mtime moves only with the kernel's clock tick, so a
// same-size rewrite by another tool right after ours looked unchanged: an entry dropped by hand
// stayed "present" and was never repaired. A file changed in the last moments is read again.
test('a same-size change that keeps inode, size and mtime is seen when it is recent', async (t) => {
  const { path } = await setup(t);
  // A whole millisecond, which utimes can set again exactly.
  const tick = new Date();
  await utimes(path, tick, tick);
  const allowlist = openAllowlist(path);
  defer(t, () => allowlist.close());
  assert.deepEqual(await allowlist.hashesOf('f00d'), ['beef']);
  const before = await stat(path, { bigint: true });
  await writeFile(path, INITIAL.replace('"beef"', '"cafe"'));
  await utimes(path, tick, tick);
  const after = await stat(path, { bigint: true });
  assert.deepEqual([after.ino, after.size, after.mtimeNs], [before.ino, before.size, before.mtimeNs], 'the cache key cannot tell');
  assert.deepEqual(await allowlist.hashesOf('f00d'), ['cafe']);
});

test('gatewayAppId is set 0x-prefixed, kept by other edits, left alone when equal, and cleared', async (t) => {
  const { path, writes } = await setup(t);
  const allowlist = openAllowlist(path, { onWrite: (e) => writes.push(e) });
  defer(t, () => allowlist.close());
  const gw = hex(0xabc, 40);

  await allowlist.setGatewayAppId(gw.toUpperCase());
  await allowlist.addHash(hex(1, 40), hex(1, 64));
  assert.equal(JSON.parse(await readFile(path, 'utf8')).gatewayAppId, `0x${gw}`);
  const before = writes.length;
  await allowlist.setGatewayAppId(`0x${gw}`);
  assert.equal(writes.length, before, 'the same id again writes nothing');

  await allowlist.setGatewayAppId('');
  const doc = JSON.parse(await readFile(path, 'utf8'));
  assert.equal(doc.gatewayAppId, '');
  assert.deepEqual(doc.apps[hex(1, 40)].composeHashes, [hex(1, 64)], 'the apps stay');
  await assert.rejects(allowlist.setGatewayAppId('not hex'), /gateway app id/);
});

// The parse is kept by the file's change key (src/fsx/unchanged.ts), ctime included: a same-size
// rewrite whose mtime was set back, long after the last change, kept device, inode, size and mtime,
// which was all the old key held, so the stale parse was trusted.
test('a same-size rewrite with its mtime set back is seen, however old the mtime', async (t) => {
  const { path } = await setup(t);
  const old = new Date(Date.now() - 3_600_000);
  await utimes(path, old, old);
  const allowlist = openAllowlist(path);
  defer(t, () => allowlist.close());
  assert.deepEqual(await allowlist.hashesOf('f00d'), ['beef']);
  const before = await stat(path, { bigint: true });
  await writeFile(path, INITIAL.replace('"beef"', '"cafe"'));
  await utimes(path, old, old);
  const after = await stat(path, { bigint: true });
  assert.deepEqual([after.ino, after.size, after.mtimeNs], [before.ino, before.size, before.mtimeNs]);
  assert.deepEqual(await allowlist.hashesOf('f00d'), ['cafe']);
});

// Issue 18: after our own write the next read finds the text it wrote and keeps that tree, whose
// auth-simple view (read()) must still be the file's: the gateway id and the hashes as written.
test('after our own write, read() gives the file as written, and another writer after it is seen', async (t) => {
  const { path } = await setup(t);
  const allowlist = openAllowlist(path);
  defer(t, () => allowlist.close());
  const gw = hex(0xabc, 40);
  await allowlist.setGatewayAppId(gw);
  await allowlist.addHash('f00d', 'cafe');
  const config = await allowlist.read();
  assert.equal(config.gatewayAppId, `0x${gw}`);
  assert.deepEqual(config.apps['f00d']?.composeHashes, ['beef', 'cafe']);
  assert.deepEqual(config.osImages, ['aa']);
  const other = openAllowlist(path);
  await other.removeHash('f00d', 'beef');
  await other.close();
  assert.deepEqual(await allowlist.hashesOf('f00d'), ['cafe']);
  assert.deepEqual((await allowlist.read()).apps['f00d']?.composeHashes, ['cafe']);
});
