// docs/apps-dir.md rules 5–12, "When to act", end to end: a real apps.d, the supervisor in-process, the
// simulated VMM. Tools that exist on this machine (cp, install, mv, sed, vim, touch, chmod,
// truncate, rm) run for real; rsync is not installed, and Ansible, Puppet, Salt and dpkg are not
// run here, so their exact file-system sequences are reproduced and each says so. ENOSPC and
// EMFILE enter through the supervisor's watchDir seam. "Nothing happened" is asserted after
// h.checkpoint(): a later app deployed, so every earlier change has been settled and planned;
// its own deploy is the one CreateVm allowed.
import { describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, link, mkdir, open, readFile, rename, unlink, utimes, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import type { FSWatcher } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { execa } from 'execa';
import { startHarness, composeText, composeOf, freePort, waitUntil, type Harness } from '../helpers/harness.ts';
import { startWithApp, assertUntouched, statusOf, rescan } from '../helpers/rules.ts';
import { appCompose } from '../sim/fixtures.ts';
import { watchDir, type WatchDir } from '../../watchers/apps.ts';
import { defer } from '../helpers/cleanup.ts';

// Replaces the content of app file `path` with `text`, the way one tool does.
type Writer = { tool: string; write: (path: string, text: string) => Promise<void> };

const rand = (n: number) => randomBytes(n).toString('hex').slice(0, n);

// Write `text` to `tmp` (0600, like mkstemp), give it the app file's mode, rename it over `path`.
async function writeTempThenRename(tmp: string, path: string, text: string): Promise<void> {
  const handle = await open(tmp, 'wx', 0o600);
  await handle.writeFile(text);
  await handle.sync();
  await handle.chmod(0o644);
  await handle.close();
  await rename(tmp, path);
}

// A copy of `text` outside apps.d, for cp, install and mv to take from.
async function source(path: string, text: string, name: string): Promise<string> {
  const src = join(dirname(dirname(path)), `${name}.src`);
  await writeFile(src, text, { mode: 0o644 });
  return src;
}

// Every writer changes the first line (`# marker`) and only that; sed and vim edit it in place.
const firstLine = (text: string) => text.slice(0, text.indexOf('\n'));

const WRITERS: Writer[] = [
  // Real cp: opens the existing file O_TRUNC and writes into it (same inode, briefly empty).
  { tool: 'cp', write: async (path, text) => void (await execa('cp', [await source(path, text, 'cp'), path])) },
  // Real install: unlinks the file, creates it anew (O_EXCL, 0600), writes, chmods.
  { tool: 'install', write: async (path, text) => void (await execa('install', ['-m', '0644', await source(path, text, 'install'), path])) },
  // Real mv of a temp file in apps.d over the app file: one rename(2).
  {
    tool: 'mv tmp app.yml',
    write: async (path, text) => {
      const tmp = join(dirname(path), 'tmp');
      await writeFile(tmp, text, { mode: 0o644 });
      await execa('mv', [tmp, path]);
    },
  },
  // Real GNU sed -i: writes ./sedXXXXXX beside the file, renames it over.
  { tool: 'sed -i', write: async (path, text) => void (await execa('sed', ['-i', `1s/.*/${firstLine(text)}/`, path])) },
  // Real vim :w with its defaults (backupcopy=auto, writebackup): creates and removes the `4913`
  // probe, renames x.yml to x.yml~, writes a new x.yml, unlinks x.yml~. backupskip is emptied
  // because its default skips /tmp, where the test's apps.d lives.
  {
    tool: "vim's :w",
    write: async (path, text) =>
      void (await execa('vim', ['-u', 'NONE', '-i', 'NONE', '-N', '-n', '-es', '-c', 'set backupskip=', '-c', `1s/.*/${firstLine(text)}/`, '-c', 'wq', path])),
  },
  // rsync is not installed; reproduced: the receiver writes `.x.yml.XXXXXX` in the destination
  // directory, sets mode and mtime from the source, and renames it over the file.
  {
    tool: 'rsync (reproduced)',
    write: async (path, text) => {
      const tmp = join(dirname(path), `.${basename(path)}.${rand(6)}`);
      await writeTempThenRename(tmp, path, text);
      await utimes(path, new Date(), new Date(Date.now() - 3_600_000));
    },
  },
  // Ansible copy/template (module_utils atomic_move), reproduced: NamedTemporaryFile with prefix
  // `.ansible_tmp` and the file name as suffix in the destination directory, then rename.
  { tool: 'Ansible (reproduced)', write: (path, text) => writeTempThenRename(join(dirname(path), `.ansible_tmp${rand(8)}${basename(path)}`), path, text) },
  // Puppet file resource (Puppet::Util.replace_file), reproduced: Uniquefile `x.ymlYYYYMMDD-PID-RAND`
  // beside the file, fsync, chmod, rename.
  { tool: 'Puppet (reproduced)', write: (path, text) => writeTempThenRename(`${path}20261020-${process.pid}-${rand(6)}`, path, text) },
  // Salt file.managed (salt.utils.files.copyfile), reproduced: mkstemp(prefix=name, dir=dir), i.e.
  // `x.ymlk3j9x2a`, then rename.
  { tool: 'Salt (reproduced)', write: (path, text) => writeTempThenRename(`${path}${rand(8)}`, path, text) },
  // dpkg unpacking a file, reproduced: write `x.yml.dpkg-new`, hard-link a backup
  // `x.yml.dpkg-tmp`, rename the new file over, remove the backup.
  {
    tool: 'dpkg (reproduced)',
    write: async (path, text) => {
      await writeFile(`${path}.dpkg-new`, text, { mode: 0o644 });
      await link(path, `${path}.dpkg-tmp`);
      await rename(`${path}.dpkg-new`, path);
      await unlink(`${path}.dpkg-tmp`);
    },
  },
];

// Assert that x was upgraded in place to `text`: same VM, no teardown and no second VM on the way.
async function assertUpgradedInPlace(h: Harness, mark: number, id: string, text: string): Promise<void> {
  const vm = await h.deployed('x', text);
  assert.equal(vm.id, id, 'same VM');
  const calls = h.mutations().slice(mark);
  assert.equal(calls.includes('RemoveVm'), false, `never torn down: ${calls.join(', ')}`);
  assert.equal(calls.includes('CreateVm'), false, `never redeployed: ${calls.join(', ')}`);
  assert.deepEqual(h.decisions('x', 'teardown'), []);
  assert.equal(h.decisions('x', 'upgrade').length, 1, 'exactly one upgrade');
}

// Tests in a group run three at a time: each owns its harness, and most of their time is the
// supervisor's timers (settle, debounce, resync), not CPU.
const GROUP = { concurrency: 3 };

test('rule 5: a file written in three chunks 300 ms apart deploys once, with the final content', async (t) => {
  const h = await startHarness(t, { apps: { settle_ms: 1000 } });
  await h.start();
  // Each prefix is itself a deployable compose file, so acting on any of them would show.
  const chunks = [composeText(await freePort(), 'v1'), '# chunk 2\n', '# chunk 3\n'];
  const file = await open(h.path('x.yml'), 'w', 0o644);
  for (const [i, chunk] of chunks.entries()) {
    // The writer's pace is the input under test, not a wait for a condition.
    if (i > 0) await delay(300);
    await file.write(chunk);
  }
  await file.close();
  assert.deepEqual(h.mutations(), [], 'nothing acted on while the file was being written');
  await h.deployed('x', chunks.join(''));
  assert.deepEqual(h.mutations(), ['CreateVm'], 'deployed once, never upgraded');
});

test('rule 5: files present at start-up settle too', async (t) => {
  const h = await startHarness(t);
  const text = composeText(await freePort(), 'v1');
  await h.put('x.yml', text);
  await h.start();
  // start() resolves after the first scan and plan: the file has been seen once, not settled.
  assert.deepEqual(h.mutations(), []);
  assert.equal((await h.statuses()).find((s) => s.app === 'x')?.phase, 'pending');
  await h.deployed('x', text);
  assert.deepEqual(h.mutations(), ['CreateVm']);
});

describe('rule 6: content decides', GROUP, () => {
  const metadataOnly: Writer[] = [
    { tool: 'touch', write: async (path) => void (await execa('touch', [path])) },
    { tool: 'chmod', write: async (path) => void (await execa('chmod', ['0640', path])) },
  ];
  for (const writer of [...metadataOnly, ...WRITERS]) {
    it(`rule 6: ${writer.tool} with identical bytes changes nothing`, async (t) => {
      const { h, vm, text } = await startWithApp(t);
      const mark = h.mutations().length;
      await writer.write(h.path('x.yml'), text);
      assert.equal(await readFile(h.path('x.yml'), 'utf8'), text);
      await assertUntouched(h, mark, vm, text);
      assert.deepEqual(h.decisions('x', 'upgrade'), []);
    });
  }
});

describe('rule 7: confirmed deletes only', GROUP, () => {
  for (const writer of WRITERS) {
    it(`rule 7: ${writer.tool} never tears down`, async (t) => {
      const { h, vm, port } = await startWithApp(t);
      const mark = h.mutations().length;
      const v2 = composeText(port, 'v2');
      await writer.write(h.path('x.yml'), v2);
      assert.equal(await readFile(h.path('x.yml'), 'utf8'), v2);
      await assertUpgradedInPlace(h, mark, vm.id, v2);
    });
  }

  it('rule 7: rm app.yml; cp new app.yml within T is an upgrade, not a teardown', async (t) => {
    // T is long enough for a scan to see the gap, so the test knows the absence was observed.
    const { h, vm, port } = await startWithApp(t, { apps: { delete_confirm_s: 3 } });
    const mark = h.mutations().length;
    const src = await source(h.path('x.yml'), composeText(port, 'v2'), 'new');
    await execa('rm', [h.path('x.yml')]);
    await rescan(h);
    assert.deepEqual(h.mutations().slice(mark), [], 'the missing file is not yet a delete');
    await execa('cp', [src, h.path('x.yml')]);
    await assertUpgradedInPlace(h, mark, vm.id, composeText(port, 'v2'));
  });

  // The real tools above leave a gap of microseconds, which a scan rarely sees. Here the gaps
  // of vim's :w and of install are held open until a full scan has seen the file missing.
  const gapped: Array<{ tool: string; write: (h: Harness, text: string) => Promise<void> }> = [
    {
      // vim :w (reproduced): `4913` probe, rename x.yml -> x.yml~, [scan], write x.yml, unlink x.yml~.
      tool: "vim's :w (reproduced, scanned mid-write)",
      write: async (h, text) => {
        await writeFile(h.path('4913'), '');
        await unlink(h.path('4913'));
        await rename(h.path('x.yml'), h.path('x.yml~'));
        await rescan(h);
        await writeFile(h.path('x.yml'), text, { mode: 0o644 });
        await unlink(h.path('x.yml~'));
      },
    },
    {
      // install (reproduced): unlink x.yml, [scan], create it O_EXCL 0600, write, chmod 0644.
      tool: 'install (reproduced, scanned mid-write)',
      write: async (h, text) => {
        await unlink(h.path('x.yml'));
        await rescan(h);
        const handle = await open(h.path('x.yml'), 'wx', 0o600);
        await handle.writeFile(text);
        await handle.chmod(0o644);
        await handle.close();
      },
    },
  ];
  for (const writer of gapped) {
    it(`rule 7: ${writer.tool} never tears down`, async (t) => {
      // T is long enough for the scan in the gap to finish well inside it.
      const { h, vm, port } = await startWithApp(t, { apps: { delete_confirm_s: 3 } });
      const mark = h.mutations().length;
      const v2 = composeText(port, 'v2');
      await writer.write(h, v2);
      await assertUpgradedInPlace(h, mark, vm.id, v2);
    });
  }

  it('rule 7: a delete is confirmed after T and a fresh listing, then torn down', async (t) => {
    const { h, vm } = await startWithApp(t, { apps: { delete_confirm_s: 2 } });
    const mark = h.mutations().length;
    await execa('rm', [h.path('x.yml')]);
    await rescan(h);
    assert.deepEqual(h.mutations().slice(mark), [], 'seen missing, but not yet for T');
    assert.equal(h.sim.state.get(vm.id)?.status, 'running');
    await h.until((vms) => vms.length === 0, 'x torn down');
    const [teardown, ...more] = h.decisions('x', 'teardown');
    assert.match(String(teardown?.fields.REASON), /file deleted \(confirmed\)/);
    assert.deepEqual(more, []);
  });
});

describe('rule 8: invalid never destroys', GROUP, () => {
  it('rule 8: empty content never deploys and never tears down', async (t) => {
    const { h, vm, text } = await startWithApp(t);
    const mark = h.mutations().length;
    await execa('truncate', ['-s', '0', h.path('x.yml')]);
    await h.put('new.yml', '');
    const status = await statusOf(h, 'x', 'invalid');
    assert.match(String(status.last_error), /x\.yml: is empty; .*delete the file instead/);
    await assertUntouched(h, mark, vm, text);
    assert.equal((await h.statuses()).find((s) => s.app === 'new')?.phase, 'invalid');
    assert.equal(h.sim.state.list().some((v) => v.name === 'new'), false);
    const [line, ...more] = h.decisions('x', 'invalid');
    assert.equal(line?.priority, 4);
    assert.deepEqual(more, []);
  });

  it('rule 8: unparsable YAML keeps the app running, logged once per content hash with line and column', async (t) => {
    const { h, vm, port, text } = await startWithApp(t);
    const mark = h.mutations().length;
    const broken = '# v2\nservices:\n  web:\n    image: nginx: 1.27\n';
    await h.put('x.yml', broken);
    const status = await statusOf(h, 'x', 'invalid');
    assert.match(String(status.last_error), /x\.yml:4:12: is not valid YAML: .*; fix the syntax there$/);
    // More scans, and a touch (same hash, new mtime), log nothing new.
    await rescan(h);
    await execa('touch', [h.path('x.yml')]);
    await assertUntouched(h, mark, vm, text);
    assert.equal(h.decisions('x', 'invalid').length, 1, 'once for this content');
    // Other broken content is another hash: one more line.
    await h.put('x.yml', `${broken}# still broken\n`);
    await waitUntil(() => h.decisions('x', 'invalid').length === 2, 'a line for the second broken content');
    assert.equal(h.decisions('x', 'invalid')[1]?.priority, 4);

    const v3 = composeText(port, 'v3');
    await h.put('x.yml', v3);
    assert.equal((await h.deployed('x', v3)).id, vm.id);
    assert.equal((await h.statuses()).find((s) => s.app === 'x')?.last_error, null);
  });

  it('rule 8: schema-invalid content never deploys and never tears down', async (t) => {
    const { h, vm, text } = await startWithApp(t);
    const mark = h.mutations().length;
    await h.put('x.yml', '# v2\nservices: [web]\n');
    await h.put('new.yml', `services:\n  web:\n    image: nginx\n    ports:\n      - "99999:80"\n`);
    const status = await statusOf(h, 'x', 'invalid');
    assert.match(String(status.last_error), /x\.yml:2:11: services: must be a mapping of service names to definitions; see https:/);
    assert.match(String((await statusOf(h, 'new', 'invalid')).last_error), /new\.yml:5:9: .*"99999" is not a port 1-65535/);
    await assertUntouched(h, mark, vm, text);
    assert.equal(h.decisions('x', 'invalid').length, 1);
  });
});

test('rule 9: with the watcher disabled, a change still lands within a resync', async (t) => {
  // Nothing pokes the supervisor here: only its resync (R = 1 s) can find the changes.
  const { h, vm, port } = await startWithApp(t, { apps: { watch: false, resync_s: 1 } });
  const v2 = composeText(port, 'v2');
  await execa('sed', ['-i', `1s/.*/${firstLine(v2)}/`, h.path('x.yml')]);
  assert.equal((await h.deployed('x', v2)).id, vm.id);
  const text = composeText(await freePort(), 'y');
  await h.put('y.yml', text);
  await h.deployed('y', text);
});

test('rule 9: a burst of events is one rescan that reads the latest content', async (t) => {
  const h = await startHarness(t, { apps: { settle_ms: 1000 } });
  await h.start();
  const port = await freePort();
  for (let i = 1; i <= 20; i += 1) await h.put('x.yml', composeText(port, `v${i}`));
  await h.deployed('x', composeText(port, 'v20'));
  assert.deepEqual(h.mutations(), ['CreateVm'], 'one deploy, of the last version');
});

test('rule 9: a file event reconciles only the apps whose file changed; the resync reconciles all', async (t) => {
  const h = await startHarness(t, { apps: { resync_s: 3600 } });
  const ports = [await freePort(), await freePort()];
  await h.put('a.yml', composeText(ports[0]!, 'a'));
  await h.put('b.yml', composeText(ports[1]!, 'b'));
  await h.start();
  await h.deployed('a');
  await h.deployed('b');
  const mark = h.logs.length;
  const looked = () => new Set(h.logs.slice(mark).filter((l) => l.fields.ACTION !== undefined).map((l) => l.fields.APP));
  await h.checkpoint();
  assert.deepEqual([...looked()].filter((app) => app === 'a' || app === 'b'), [], 'a and b were not looked at for the new file');
  await rescan(h);
  assert.ok(looked().has('a') && looked().has('b'), 'a full pass looks at every app');
});

describe('rule 10: resync against reality', GROUP, () => {
  // Nothing pokes the supervisor in these tests: the periodic resync (R = 2 s) repairs the drift.
  it('rule 10: a VM removed behind our back is redeployed', async (t) => {
    const { h, vm, text } = await startWithApp(t);
    await h.supervisor().vmm.removeVm(vm.id);
    const again = await h.deployed('x', text);
    assert.notEqual(again.id, vm.id);
    assert.match(String(h.decisions('x', 'deploy').at(-1)?.fields.REASON), new RegExp(`VM ${vm.id} is gone`));
  });

  it('rule 10: a VM stopped behind our back is started again', async (t) => {
    const { h, vm, text } = await startWithApp(t);
    await h.supervisor().vmm.stopVm(vm.id);
    await h.until((vms) => vms.some((v) => v.id === vm.id && v.status === 'stopped'), 'x stopped');
    assert.equal((await h.deployed('x', text)).id, vm.id);
    assert.match(String(h.decisions('x', 'deploy').at(-1)?.fields.REASON), /is stopped; starting it/);
  });

  it('rule 10: a VM we own whose file went while we were stopped is torn down after confirmation', async (t) => {
    const { h, vm } = await startWithApp(t);
    await h.stop();
    await execa('rm', [h.path('x.yml')]);
    const mark = h.mutations().length;
    await h.start();
    // The first scan saw it missing; that is not yet a confirmed delete.
    assert.deepEqual(h.mutations().slice(mark), []);
    assert.equal(h.sim.state.get(vm.id)?.status, 'running');
    await h.until((vms) => vms.length === 0, 'x torn down');
    assert.match(String(h.decisions('x', 'teardown')[0]?.fields.REASON), /confirmed/);
  });

  it('rule 10: VMs the supervisor did not create are never touched', async (t) => {
    const h = await startHarness(t);
    await h.start();
    const vmm = h.supervisor().vmm;
    const [image] = await vmm.listImages();
    // Made by hand: one like the KMS, one with the name of an app.
    const hand = await Promise.all(
      ['kms', 'x'].map((name) => vmm.createVm({ name, image: image!.name, compose_file: appCompose(name), vcpu: 1, memory: 512, disk_size: 1, ports: [] })),
    );
    await h.until((vms) => vms.length === 2 && vms.every((v) => v.boot_progress === 'done'), 'hand-made VMs booted');
    const text = composeText(await freePort(), 'v1');
    await h.put('x.yml', text);
    const own = await h.deployed('x', text);
    await execa('rm', [h.path('x.yml')]);
    await h.until((vms) => !vms.some((v) => v.id === own.id), 'our x torn down');
    await h.checkpoint();
    for (const { id } of hand) assert.equal(h.sim.state.get(id)?.status, 'running', `hand-made VM ${id} untouched`);
  });
});

// Wait until _supervisor.json reports the watcher `state`.
const watcherIs = (h: Harness, state: 'ok' | 'degraded') =>
  waitUntil(async () => (await h.supervisorStatus())?.watcher === state, `watcher ${state}`);

// Directories whose inotify watches fail as they do once fs.inotify.max_user_watches (ENOSPC)
// or an open-file limit (EMFILE) is reached, mapped to that code; every other directory is
// watched for real. `live` holds each directory's current watch, to fail it while it runs.
const exhausted = new Map<string, string>();
const live = new Map<string, FSWatcher>();
const limitedWatch: WatchDir = (dir, onEvent) => {
  const code = exhausted.get(dir);
  if (code !== undefined) throw Object.assign(new Error(`${code}: simulated inotify failure, watch '${dir}'`), { code });
  const w = watchDir(dir, onEvent);
  live.set(dir, w);
  return w;
};

// Warnings the supervisor logged about the file watcher stopping.
const watcherWarnings = (h: Harness) => h.logs.filter((l) => l.priority === 4 && l.fields.CODE !== undefined);

describe('rule 11: the watcher heals itself', GROUP, () => {
  const faults = {
    ENOSPC: /inotify watch limit is reached; raise fs\.inotify\.max_user_watches/,
    EMFILE: /too many open files or inotify instances/,
  };
  for (const [code, why] of Object.entries(faults)) {
    it(`rule 11: on ${code} the watcher degrades, changes land without it, and it re-arms`, async (t) => {
      const { h, vm, port } = await startWithApp(t, { watchDir: limitedWatch });
      // The limit is reached: the live watch fails, and so does every re-arm until it is raised.
      exhausted.set(h.appsDir, code);
      defer(t, () => exhausted.delete(h.appsDir));
      const error = Object.assign(new Error(`${code}: simulated inotify failure, watch '${h.appsDir}'`), { code });
      assert.equal(live.get(h.appsDir)?.emit('error', error), true, 'the apps.d watcher was live');
      await watcherIs(h, 'degraded');
      const [warning] = watcherWarnings(h);
      assert.equal(warning?.fields.CODE, code);
      assert.match(String(warning?.fields.msg), why);

      // No watcher runs (every re-arm fails): only the resync and the rescans after each watcher
      // error can find this change.
      const v2 = composeText(port, 'v2');
      await h.put('x.yml', v2);
      assert.equal((await h.deployed('x', v2)).id, vm.id);
      assert.equal((await h.supervisorStatus())?.watcher, 'degraded', 'still degraded: not re-armed yet');

      // The limit is raised: a later re-arm attempt succeeds.
      exhausted.delete(h.appsDir);
      await watcherIs(h, 'ok');
      const rearmed = h.logs.findIndex((l) => l.fields.msg === 'file watcher re-armed');
      assert.ok(rearmed > h.logs.indexOf(warning!), 're-armed after it degraded');
    });
  }

  it('rule 11: apps.d replaced by a new directory: degraded, re-armed on the new one, changes land', async (t) => {
    const { h, vm, port, text } = await startWithApp(t);
    const mark = h.mutations().length;
    const fresh = join(h.dir, 'apps.new');
    await mkdir(fresh, { mode: 0o755 });
    await writeFile(join(fresh, 'x.yml'), text, { mode: 0o644 });
    const y = composeText(await freePort(), 'y');
    await writeFile(join(fresh, 'y.yml'), y, { mode: 0o644 });
    await execa('mv', [h.appsDir, join(h.dir, 'apps.old')]);
    await execa('mv', [fresh, h.appsDir]);

    await waitUntil(() => watcherWarnings(h).length > 0, 'a watcher warning');
    await h.deployed('y', y);
    await watcherIs(h, 'ok');
    assert.deepEqual(h.mutations().slice(mark), ['CreateVm'], 'x, same content in the new directory, is left alone');
    // Armed on the new directory: an edit there lands.
    const v2 = composeText(port, 'v2');
    await execa('sed', ['-i', `1s/.*/${firstLine(v2)}/`, h.path('x.yml')]);
    assert.equal((await h.deployed('x', v2)).id, vm.id);
  });
});

describe('rule 12: a missing directory is not an empty one', GROUP, () => {
  // Each way apps.d can stop being listable, and how to put it back.
  const faults: Array<{ what: string; code: RegExp; break: (h: Harness, away: string) => Promise<void> }> = [
    { what: 'renamed away', code: /does not exist/, break: async (h, away) => void (await execa('mv', [h.appsDir, away])) },
    {
      what: 'replaced by a file',
      code: /is not a directory/,
      break: async (h, away) => {
        await execa('mv', [h.appsDir, away]);
        await writeFile(h.appsDir, 'not a directory\n');
      },
    },
    {
      what: 'a symlink loop',
      code: /cannot be listed \(ELOOP\)/,
      break: async (h, away) => {
        await execa('mv', [h.appsDir, away]);
        await execa('ln', ['-s', 'apps.d', h.appsDir]);
      },
    },
  ];
  for (const fault of faults) {
    it(`rule 12: apps.d ${fault.what}: nothing torn down, an error logged; restored, it carries on`, async (t) => {
      const { h, vm, port } = await startWithApp(t);
      const y = composeText(await freePort(), 'y');
      await h.put('y.yml', y);
      await h.deployed('y', y);
      const mark = h.mutations().length;
      const away = join(h.dir, 'apps.away');
      await fault.break(h, away);

      const dirErrors = () => h.logs.filter((l) => l.priority === 3 && l.fields.FILE === h.appsDir);
      await waitUntil(() => dirErrors().length > 0, 'the apps.d error');
      assert.match(String(dirErrors()[0]?.fields.msg), fault.code);
      assert.match(String(dirErrors()[0]?.fields.msg), /no app is deployed or torn down until it can be listed again/);
      // The watcher's second re-arm attempt comes a backoff (1 s) after the first: well past
      // T (0.3 s) by the supervisor's own timers. Then one more full scan.
      await waitUntil(() => watcherWarnings(h).length >= 2, 'a failed watcher re-arm');
      await rescan(h);
      assert.deepEqual(h.mutations().slice(mark), [], 'nothing torn down');
      assert.equal(h.sim.state.list().filter((v) => v.status === 'running').length, 2);
      assert.equal(dirErrors().length, 1, 'logged once, not once per scan');

      await execa('rm', ['-f', h.appsDir]);
      await execa('mv', [away, h.appsDir]);
      const v2 = composeText(port, 'v2');
      await execa('sed', ['-i', `1s/.*/${firstLine(v2)}/`, h.path('x.yml')]);
      assert.equal((await h.deployed('x', v2)).id, vm.id);
      assert.ok(h.logs.some((l) => l.priority === 6 && String(l.fields.msg).endsWith('can be listed again')));
      assert.equal(h.mutations().slice(mark).includes('RemoveVm'), false);
      assert.equal(composeOf(h.sim.state.list().find((v) => v.name === 'y')!), y, 'y untouched');
    });
  }
});

test('rule 10: a resync that cannot list the VMs is logged as the VMM\'s fault, once, and not as the directory\'s', async (t) => {
  const { h } = await startWithApp(t, { apps: { resync_s: 3600 } });
  const mark = h.logs.length;
  h.sim.faults.failNext('Status', { count: 2, message: 'injected failure' });
  await rescan(h);
  await rescan(h);
  const since = () => h.logs.slice(mark);
  const vmmWarnings = since().filter((l) => l.priority === 4 && String(l.fields.msg).includes('cannot list the VMs of dstack-vmm'));
  assert.equal(vmmWarnings.length, 1, 'said once for two failed resyncs');
  assert.match(String(vmmWarnings[0]?.fields.msg), /injected failure/);
  assert.deepEqual(since().filter((l) => l.fields.FILE === h.appsDir), [], 'nothing said about apps.d');
  await rescan(h);
  assert.ok(since().some((l) => l.priority === 6 && String(l.fields.msg).includes('dstack-vmm lists the VMs again')));
  assert.equal(h.sim.state.list().filter((v) => v.status === 'running').length, 1, 'x keeps running');
});

test('rule 12: an apps.d others may write is not acted on (as sshd StrictModes): an error, nothing deployed or torn down', async (t) => {
  const { h, vm } = await startWithApp(t);
  const mark = h.mutations().length;
  await chmod(h.appsDir, 0o775);
  await unlink(h.path('x.yml'));
  const y = composeText(await freePort(), 'y');
  await h.put('y.yml', y);
  const dirErrors = () => h.logs.filter((l) => l.priority === 3 && l.fields.FILE === h.appsDir);
  await waitUntil(() => dirErrors().length > 0, 'the apps.d error');
  assert.match(String(dirErrors()[0]?.fields.msg), /is group- or world-writable \(mode 0775\).*run: chmod go-w .*no app is deployed or torn down/);
  await rescan(h);
  await rescan(h);
  assert.deepEqual(h.mutations().slice(mark), [], 'x not torn down, y not deployed');
  assert.equal(h.sim.state.get(vm.id)?.status, 'running');
  await chmod(h.appsDir, 0o755);
  await h.deployed('y', y);
  await h.until((vms) => !vms.some((v) => v.id === vm.id), 'x torn down once apps.d is safe again');
});
