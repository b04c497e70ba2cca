import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, chown, link, mkdir, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { createScanner } from '../../src/appsdir/scan.ts';
import { entryOf, makeFixture, settle, settledText } from './scan-fixture.ts';

const sha = (text: string) => createHash('sha256').update(text).digest('hex');

test('rule 1: only valid names that are regular files of at most max_file_bytes are apps', async (t) => {
  const f = await makeFixture(t);
  await f.put('web.yml', 'services: {}\n');
  await f.put('exact.yaml', Buffer.alloc(1024 * 1024, 0x61));
  await f.put('big.yml', Buffer.alloc(2 * 1024 * 1024, 0x61));
  await mkdir(join(f.dir, 'sub.yml'));
  await mkdir(join(f.dir, 'archive'));
  for (const noise of ['.web.yml', 'web.yml~', '4913', '#web.yml#', 'web.yml.bak', 'web.yml.dpkg-new', 'sedAbC123', 'web.ymlk3j9x2', 'web.yml.disabled', 'web.env']) {
    await f.put(noise, 'services: {}\n');
  }
  const listing = await settle(f);
  assert.deepEqual(listing.entries.map((e) => [e.name, e.state]).sort(), [
    ['big', 'refused'],
    ['exact', 'settled'],
    ['sub', 'refused'],
    ['web', 'settled'],
  ]);
  const web = entryOf(listing, 'web');
  assert.ok(web.state === 'settled' && web.file === 'web.yml' && web.sha256 === sha('services: {}\n'));
  const big = entryOf(listing, 'big');
  assert.ok(big.state === 'refused' && big.code === 'APP_TOO_LARGE' && big.message.startsWith(join(f.dir, 'big.yml')));
  const sub = entryOf(listing, 'sub');
  assert.ok(sub.state === 'refused' && sub.code === 'APP_NOT_REGULAR' && /directory/.test(sub.message));
  assert.deepEqual(listing.misnamed, []);
});

test('rule 1: a named pipe is refused without hanging the scan', async (t) => {
  const f = await makeFixture(t);
  await execa('mkfifo', ['-m', '0644', join(f.dir, 'pipe.yml')]);
  const pipe = entryOf(await settle(f), 'pipe');
  assert.ok(pipe.state === 'refused' && pipe.code === 'APP_NOT_REGULAR' && /named pipe/.test(pipe.message));
});

test('rule 2: a misnamed file is reported once per appearance, ignored ones never', async (t) => {
  const f = await makeFixture(t);
  await f.put('My_App.yml', 'services: {}\n');
  await f.put('.web.yml.swp', 'x');
  const first = await f.list();
  assert.equal(first.entries.length, 0);
  assert.equal(first.misnamed.length, 1);
  assert.equal(first.misnamed[0]?.file, 'My_App.yml');
  assert.equal(first.misnamed[0]?.firstSeen, true);
  assert.match(first.misnamed[0]?.message ?? '', /rule 1.*rename it to "my-app\.yml"/);
  assert.equal((await f.list()).misnamed[0]?.firstSeen, false, 'the second scan does not warn again');
  await unlink(join(f.dir, 'My_App.yml'));
  assert.deepEqual((await f.list()).misnamed, []);
  await f.put('My_App.yml', 'services: {}\n');
  assert.equal((await f.list()).misnamed[0]?.firstSeen, true, 'a file that comes back is new again');
});

test('rule 3: web.yml and web.yaml together are one conflict naming both; neither acts until one goes', async (t) => {
  const f = await makeFixture(t);
  await f.put('web.yml', 'a: 1\n');
  await f.put('web.yaml', 'a: 2\n');
  const listing = await settle(f);
  assert.equal(listing.entries.length, 1);
  const web = entryOf(listing, 'web');
  assert.equal(web.state, 'conflict');
  assert.ok(web.state === 'conflict');
  assert.deepEqual(web.files, ['web.yaml', 'web.yml']);
  assert.equal(web.code, 'APP_CONFLICT');
  assert.ok(web.message.includes(join(f.dir, 'web.yaml')) && web.message.includes(join(f.dir, 'web.yml')));
  await unlink(join(f.dir, 'web.yaml'));
  assert.equal(entryOf(await f.list(), 'web').state, 'unsettled', 'the survivor settles like a new file');
  f.clock.t += f.settleMs;
  assert.equal(settledText(await f.list(), 'web'), 'a: 1\n');
});

test('rule 4: a file not owned by the configured owner is refused', async (t) => {
  const owner = (process.getuid?.() ?? 0) + 4242;
  const f = await makeFixture(t, { owner });
  // The directory is the configured owner's (or it is refused as a whole); the file is not.
  await chown(f.dir, owner, -1);
  const path = await f.put('web.yml', 'a: 1\n');
  const web = entryOf(await settle(f), 'web');
  assert.ok(web.state === 'refused');
  assert.equal(web.code, 'APP_OWNER');
  assert.equal(web.message, `${path}: owned by uid ${process.getuid?.() ?? 0}, but app files must be owned by uid ${owner} ([apps] owner); run: chown ${owner} ${path}`);
});

test('rule 4: a group- or world-writable file is refused, like sshd StrictModes', async (t) => {
  const f = await makeFixture(t);
  const path = await f.put('web.yml', 'a: 1\n');
  for (const mode of [0o664, 0o646, 0o666]) {
    await chmod(path, mode);
    const web = entryOf(await settle(f), 'web');
    assert.ok(web.state === 'refused' && web.code === 'APP_WRITABLE', mode.toString(8));
    assert.match(web.message, /chmod go-w/);
  }
  await chmod(path, 0o640);
  assert.equal(settledText(await settle(f), 'web'), 'a: 1\n');
});

test('rule 4: a symlink resolving outside apps.d is refused; one inside it is followed', async (t) => {
  const f = await makeFixture(t);
  await writeFile(join(f.root, 'outside.yml'), 'a: 1\n');
  await symlink(join(f.root, 'outside.yml'), join(f.dir, 'out.yml'));
  await symlink('../outside.yml', join(f.dir, 'rel.yml'));
  await mkdir(join(f.dir, 'versions'));
  await f.put('versions/web-v2.yml', 'v: 2\n');
  await symlink('versions/web-v2.yml', join(f.dir, 'web.yml'));
  await symlink('nowhere.yml', join(f.dir, 'dangling.yml'));
  const listing = await settle(f);
  for (const name of ['out', 'rel']) {
    const e = entryOf(listing, name);
    assert.ok(e.state === 'refused' && e.code === 'APP_SYMLINK_OUTSIDE', name);
    assert.match(e.message, /outside the apps directory/);
  }
  assert.equal(settledText(listing, 'web'), 'v: 2\n');
  const dangling = entryOf(listing, 'dangling');
  assert.ok(dangling.state === 'refused' && dangling.code === 'APP_NOT_REGULAR');
});

test('issue 13 item 6: a hard link to a root-only file outside apps.d is refused; a copy of it is an app', async (t) => {
  const f = await makeFixture(t);
  const outside = join(f.root, 'root-only.yml');
  await writeFile(outside, 'a: 1\n', { mode: 0o600 });
  const path = join(f.dir, 'web.yml');
  await link(outside, path);
  const web = entryOf(await settle(f), 'web');
  assert.ok(web.state === 'refused', web.state);
  assert.equal(web.code, 'APP_HARDLINK');
  assert.equal(web.message, `${path}: has 2 names (it is hard-linked), so it may be a file from outside the apps directory; copy the file instead of hard-linking it: run cp ${path} ${path}.tmp && mv ${path}.tmp ${path}`);
  // The fix the message gives, run for real: the same bytes, now a file of its own.
  await execa('sh', ['-c', `cp ${path} ${path}.tmp && mv ${path}.tmp ${path}`]);
  assert.equal(settledText(await settle(f), 'web'), 'a: 1\n');
});

test('issue 13 item 6: a file hard-linked after it settled is refused once the link settles', async (t) => {
  const f = await makeFixture(t);
  const path = await f.put('web.yml', 'a: 1\n');
  assert.equal(settledText(await settle(f), 'web'), 'a: 1\n');
  await link(path, join(f.root, 'elsewhere.yml'));
  assert.equal(entryOf(await f.list(), 'web').state, 'unsettled', 'a new link count is a change');
  f.clock.t += f.settleMs;
  const web = entryOf(await f.list(), 'web');
  assert.ok(web.state === 'refused' && web.code === 'APP_HARDLINK');
  await unlink(join(f.root, 'elsewhere.yml'));
  assert.equal(settledText(await settle(f), 'web'), 'a: 1\n');
});

test('rule 12: a missing or non-directory apps.d is a dir-error, never an empty listing', async (t) => {
  const f = await makeFixture(t);
  await f.put('web.yml', 'a: 1\n');
  await settle(f);
  await rm(f.dir, { recursive: true });
  const missing = await f.scanner.scan();
  assert.equal(missing.kind, 'dir-error');
  assert.ok(missing.kind === 'dir-error' && missing.code === 'APPS_DIR_MISSING');
  assert.match(missing.message, /no app is deployed or torn down/);
  await writeFile(f.dir, 'not a dir');
  const notDir = await f.scanner.scan();
  assert.ok(notDir.kind === 'dir-error' && notDir.code === 'APPS_DIR_NOT_DIR');
  const never = createScanner({ dir: join(f.root, 'never'), owner: 0, maxFileBytes: 1, settleMs: 0, now: () => 0 });
  assert.equal((await never.scan()).kind, 'dir-error');
});

test('rule 11: a replaced apps.d (new inode) is flagged and its files settle afresh', async (t) => {
  const f = await makeFixture(t);
  await f.put('web.yml', 'a: 1\n');
  const before = await settle(f);
  assert.equal(before.replaced, false);
  await rename(f.dir, join(f.root, 'apps.d.old'));
  await mkdir(f.dir);
  await f.put('web.yml', 'a: 1\n');
  const after = await f.list();
  assert.equal(after.replaced, true);
  assert.notEqual(after.dir.ino, before.dir.ino);
  assert.equal(entryOf(after, 'web').state, 'unsettled');
  assert.equal((await f.list()).replaced, false, 'reported once, on the scan that saw the change');
});

test('an unchanged file is not read again once its last change is a second old; a change is read at once', async (t) => {
  const later = () => Date.now() + 5000;
  const f = await makeFixture(t, { wallNow: later });
  await f.put('web.yml', 'services: {}\n');
  const bytesOf = (l: Awaited<ReturnType<typeof f.list>>) => {
    const e = entryOf(l, 'web');
    return e.state === 'settled' ? e.bytes : undefined;
  };
  const first = bytesOf(await settle(f));
  assert.ok(first);
  assert.equal(bytesOf(await f.list()), first, 'the same read, reused');
  await f.put('web.yml', 'services: {}\n# changed\n');
  f.clock.t += f.settleMs;
  await f.list();
  f.clock.t += f.settleMs;
  const changed = entryOf(await f.list(), 'web');
  assert.ok(changed.state === 'settled' && changed.sha256 === sha('services: {}\n# changed\n'));
});

test('a file read within a second of its last change is read again on every scan (timestamps are coarse)', async (t) => {
  const f = await makeFixture(t, { wallNow: Date.now });
  await f.put('web.yml', 'services: {}\n');
  const first = entryOf(await f.list(), 'web');
  f.clock.t += f.settleMs;
  const second = entryOf(await f.list(), 'web');
  assert.ok(second.state === 'settled' && first.state === 'unsettled');
  f.clock.t += f.settleMs;
  const third = entryOf(await f.list(), 'web');
  assert.ok(third.state === 'settled');
  assert.notEqual(third.bytes, second.bytes, 'read again, not reused');
});

test('rule 12: an apps.d that is group/world-writable or owned by another uid is a dir-error naming the fix', async (t) => {
  const f = await makeFixture(t);
  await f.put('web.yml', 'a: 1\n');
  await settle(f);
  await chmod(f.dir, 0o757);
  const writable = await f.scanner.scan();
  assert.ok(writable.kind === 'dir-error' && writable.code === 'APPS_DIR_UNSAFE');
  assert.match(writable.message, /group- or world-writable \(mode 0757\).*chmod go-w/);
  await chmod(f.dir, 0o755);
  assert.equal((await f.scanner.scan()).kind, 'listing');
  const other = createScanner({ dir: f.dir, owner: 4242, maxFileBytes: 1024, settleMs: 0, now: () => 0 });
  const owned = await other.scan();
  assert.ok(owned.kind === 'dir-error' && owned.code === 'APPS_DIR_UNSAFE');
  assert.match(owned.message, /owned by uid \d+, not 4242.*chown 4242/);
});
