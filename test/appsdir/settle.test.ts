import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, chmod, open, rename, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { createScanner } from '../../src/appsdir/scan.ts';
import { entryOf, makeFixture, settle, settledText, type Fixture } from './scan-fixture.ts';

test('rule 5: a file written in three chunks settles once with the final content', async (t) => {
  const f = await makeFixture(t);
  const path = join(f.dir, 'web.yml');
  const chunks = ['services:\n', '  web:\n', '    image: nginx\n'];
  const states: string[] = [];
  for (const chunk of chunks) {
    await appendFile(path, chunk);
    await chmod(path, 0o644);
    const e = entryOf(await f.list(), 'web');
    states.push(e.state);
    f.clock.t += 300;
  }
  f.clock.t += f.settleMs - 300 - 1;
  states.push(entryOf(await f.list(), 'web').state);
  f.clock.t += 1;
  const final = await f.list();
  assert.deepEqual(states, ['unsettled', 'unsettled', 'unsettled', 'unsettled'], 'nothing settles before Q of quiet');
  assert.equal(settledText(final, 'web'), chunks.join(''));
  assert.deepEqual(final.unsettled, []);
  assert.equal(final.nextSettleAt, null);
});

test('rule 5: a real writer process, three chunks 300 ms apart, settles once with the final content', async (t) => {
  const f = await makeFixture(t);
  const scanner = createScanner({ dir: f.dir, owner: process.getuid?.() ?? 0, maxFileBytes: 1 << 20, settleMs: 1000, now: Date.now });
  const path = join(f.dir, 'web.yml');
  const writer = execa('sh', ['-c', `umask 022; printf 'a: 1\\n' > "$1"; sleep 0.3; printf 'b: 2\\n' >> "$1"; sleep 0.3; printf 'c: 3\\n' >> "$1"`, 'sh', path]);
  let writerDone = false;
  void writer.then(() => (writerDone = true));
  const deadline = Date.now() + 10_000;
  const seen: string[] = [];
  for (;;) {
    assert.ok(Date.now() < deadline, `did not settle: ${seen.join(' ')}`);
    const r = await scanner.scan();
    assert.equal(r.kind, 'listing');
    if (r.kind !== 'listing') return;
    const e = r.entries.find((x) => x.name === 'web');
    if (e?.state === 'settled') {
      assert.ok(writerDone, 'settled only after the last chunk');
      assert.equal(e.bytes.toString(), 'a: 1\nb: 2\nc: 3\n');
      break;
    }
    seen.push(e?.state ?? 'absent');
    // Rescan when the scanner says the file could settle, or sooner to catch the next chunk.
    const wait = Math.min(100, Math.max(1, (r.nextSettleAt ?? Date.now()) - Date.now()));
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
  await writer;
});

test('rule 5: files present at start-up settle too, and the scanner says when to look again', async (t) => {
  const f = await makeFixture(t);
  await f.put('web.yml', 'a: 1\n');
  const first = await f.list();
  assert.equal(entryOf(first, 'web').state, 'unsettled');
  assert.deepEqual(first.unsettled, ['web']);
  assert.equal(first.nextSettleAt, f.clock.t + f.settleMs);
  f.clock.t = first.nextSettleAt ?? 0;
  assert.equal(settledText(await f.list(), 'web'), 'a: 1\n');
});

test('rule 5: touch and chmod restart the settle window but keep the hash', async (t) => {
  const f = await makeFixture(t);
  const path = await f.put('web.yml', 'a: 1\n');
  const before = entryOf(await settle(f), 'web');
  await utimes(path, new Date(), new Date(Date.now() + 5000));
  assert.equal(entryOf(await f.list(), 'web').state, 'unsettled');
  await chmod(path, 0o600);
  const after = entryOf(await settle(f), 'web');
  assert.ok(before.state === 'settled' && after.state === 'settled');
  assert.equal(after.sha256, before.sha256);
});

// Each tool turns web.yml from v1 into v2 the way it does on a real host.
type Tool = { name: string; edit: (f: Fixture, path: string) => Promise<void> };

const tools: Tool[] = [
  { name: 'cp (in place, same inode)', edit: async (f, path) => void (await copyFrom(f, 'cp', path)) },
  { name: 'install -m 0644 (new inode)', edit: async (f, path) => void (await copyFrom(f, 'install', path)) },
  {
    name: 'mv tmp app.yml (rename over)',
    edit: async (f, path) => {
      await writeFile(join(f.root, 'web.tmp'), 'v: 2\n', { mode: 0o644 });
      await execa('mv', [join(f.root, 'web.tmp'), path]);
    },
  },
  { name: 'sed -i (sedXXXXXX temp, rename over)', edit: async (_f, path) => void (await execa('sed', ['-i', 's/v: 1/v: 2/', path])) },
  {
    // vim :w with backupcopy=auto, as strace shows it: probe file 4913, rename the original to
    // web.yml~, write a new web.yml, fsync, set the mode, drop the backup.
    name: 'vim :w (rename-over syscall sequence)',
    edit: async (f, path) => {
      const probe = await open(join(f.dir, '4913'), 'wx', 0o644);
      await probe.close();
      await unlink(join(f.dir, '4913'));
      await rename(path, `${path}~`);
      const mid = await f.list();
      assert.deepEqual([mid.entries, mid.misnamed], [[], []], 'mid-save: the app is absent and web.yml~ is silent');
      const fresh = await open(path, 'wx', 0o644);
      await fresh.writeFile('v: 2\n');
      await fresh.sync();
      await fresh.chmod(0o644);
      await fresh.close();
      await unlink(`${path}~`);
    },
  },
];

async function copyFrom(f: Fixture, tool: 'cp' | 'install', path: string): Promise<void> {
  const src = join(f.root, 'web.new');
  await writeFile(src, 'v: 2\n', { mode: 0o644 });
  await execa(tool, tool === 'install' ? ['-m', '0644', src, path] : [src, path]);
}

const rsync = await execa('rsync', ['--version']).then(
  () => true,
  () => false,
);
if (rsync) {
  tools.push({
    name: 'rsync (.web.yml.XXXXXX temp, rename over)',
    edit: async (f, path) => {
      await writeFile(join(f.root, 'web.yml'), 'v: 2\n', { mode: 0o644 });
      await execa('rsync', [join(f.root, 'web.yml'), path]);
    },
  });
}

for (const tool of tools) {
  test(`rule 5: ${tool.name} lands as one unsettled-then-settled change to the new content`, async (t) => {
    const f = await makeFixture(t);
    const path = await f.put('web.yml', 'v: 1\n');
    assert.equal(settledText(await settle(f), 'web'), 'v: 1\n');
    await tool.edit(f, path);
    const right = await f.list();
    assert.equal(entryOf(right, 'web').state, 'unsettled', 'a fresh change is never read as settled');
    f.clock.t += f.settleMs;
    const after = await f.list();
    assert.equal(settledText(after, 'web'), 'v: 2\n');
    assert.deepEqual(after.entries.map((e) => e.name), ['web'], 'no temp file became an app');
    assert.deepEqual(after.misnamed, []);
  });
}
