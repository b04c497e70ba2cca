// Issue 18: the lister's differences() joins the scanner's and the env reader's, so a pass hinted
// with them lists what a full pass would. The oracle is a second, fresh lister (its own scanner and
// env reader) listing the same apps.d in full; Q = 0, so its first look is settled too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createScanner, RECHECK_ALL, type Recheck } from '../../src/appsdir/scan.ts';
import { createAppLister, type AppLister } from '../../src/controller/adapters.ts';
import type { ListedApp } from '../../src/controller/desired.ts';
import { createLogger } from '../../src/log/logger.ts';
import { createEnvFileReader } from '../../src/secrets/env-file.ts';
import { collectLines } from '../log/collect.ts';
import { makeFixture, type Fixture } from '../appsdir/scan-fixture.ts';
import { waitUntil } from '../helpers/harness.ts';

const owner = process.getuid?.() ?? 0;
// Reads stamped well after every change: no kept read is racy.
const later = () => Date.now() + 5000;

function listerOf(f: Fixture, scanner = f.scanner): AppLister {
  const log = createLogger({ level: 'debug', stream: collectLines().stream });
  return createAppLister({ scanner, envs: createEnvFileReader({ owner, wallNow: later }), dir: f.dir, log });
}

// What a listing says, without object identities.
async function summaryOf(lister: AppLister, recheck: Recheck): Promise<string[]> {
  const listing = await lister.listApps(recheck);
  assert.ok(listing.ok);
  const text = (a: ListedApp) => (a.kind === 'settled' ? `${a.name} settled ${a.file} ${a.fileHash} ${JSON.stringify(a.env ?? null)}` : `${a.name} ${a.kind} ${a.file}`);
  return listing.apps.map(text);
}

async function putEnv(f: Fixture, name: string, text: string): Promise<string> {
  const path = join(f.dir, `${name}.env`);
  await writeFile(path, text);
  await chmod(path, 0o600);
  return path;
}

// A lister over an apps.d with Q = 0, listed in full once files are put.
async function listed(t: Parameters<typeof makeFixture>[0]): Promise<{ f: Fixture; lister: AppLister }> {
  const f = await makeFixture(t, { settleMs: 0, wallNow: later });
  return { f, lister: listerOf(f) };
}

// differences() names exactly `expected`, and a pass hinted with them lists what a fresh lister's
// full pass does, which differs from what the last pass listed.
async function resync(f: Fixture, lister: AppLister, before: string[], expected: string[]): Promise<string[]> {
  const fresh = listerOf(f, createScanner({ dir: f.dir, owner, maxFileBytes: 1024 * 1024, settleMs: 0, now: () => f.clock.t, wallNow: later }));
  const truth = await summaryOf(fresh, RECHECK_ALL);
  assert.notDeepEqual(before, truth, 'a full pass sees a change');
  const names = await lister.differences();
  assert.ok(names);
  assert.deepEqual([...names].sort(), [...expected].sort());
  const event = await summaryOf(lister, { all: false, names });
  assert.deepEqual(event, truth);
  assert.deepEqual([...((await lister.differences()) ?? ['undefined'])], [], 'then nothing differs');
  return event;
}

test('no pass yet, or apps.d gone: undefined; an unchanged apps.d with secrets: nothing differs', async (t) => {
  const { f, lister } = await listed(t);
  await f.put('a.yml', 'a: 1\n');
  await f.put('b.yml', 'b: 1\n');
  await f.put('Bad_Name.yml', 'x: 1\n');
  await putEnv(f, 'b', 'K=1\n');
  assert.equal(await lister.differences(), undefined, 'never listed');
  await summaryOf(lister, RECHECK_ALL);
  assert.deepEqual([...((await lister.differences()) ?? ['undefined'])], []);
  await rename(f.dir, join(f.root, 'elsewhere'));
  assert.equal(await lister.differences(), undefined, 'apps.d cannot be listed');
});

// Issue 18: a resync's look lets an event pass or a changed app's reconcile go first.
test("differences() stats apps.d's files and NAME.env only after its pace", async (t) => {
  const { f, lister } = await listed(t);
  await f.put('a.yml', 'a: 1\n');
  await putEnv(f, 'a', 'K=1\n');
  await summaryOf(lister, RECHECK_ALL);
  let release = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  let paces = 0;
  let done = false;
  const looking = lister.differences(() => (paces++, held)).then((names) => ((done = true), names));
  await waitUntil(() => paces === 2, "the file's stats and the NAME.env's each asking for the pace", 10_000);
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  assert.equal(done, false);
  release();
  assert.deepEqual([...((await looking) ?? ['undefined'])], []);
});

test('NAME.env added, rewritten with the same size and mtime, and removed beside a settled app is named', async (t) => {
  const { f, lister } = await listed(t);
  await f.put('a.yml', 'a: 1\n');
  await f.put('b.yml', 'b: 1\n');
  const first = await summaryOf(lister, RECHECK_ALL);
  const env = await putEnv(f, 'a', 'K=1\n');
  const added = await resync(f, lister, first, ['a.env']);
  const { atime, mtime } = await stat(env);
  await writeFile(env, 'K=2\n');
  await utimes(env, atime, mtime);
  const changed = await resync(f, lister, added, ['a.env']);
  await unlink(env);
  await resync(f, lister, changed, ['a.env']);
});

test('an app file and a NAME.env changed together: both named, one pass takes both in', async (t) => {
  const { f, lister } = await listed(t);
  await f.put('a.yml', 'a: 1\n');
  await f.put('b.yml', 'b: 1\n');
  await putEnv(f, 'b', 'K=1\n');
  const first = await summaryOf(lister, RECHECK_ALL);
  await f.put('a.yml', 'a: 22\n');
  await putEnv(f, 'b', 'K=22\n');
  await f.put('c.yml', 'c: 1\n');
  await resync(f, lister, first, ['a.yml', 'b.env', 'c.yml']);
});

test('NAME.env beside an app not settled is not named: it is read once the app settles', async (t) => {
  const { f, lister } = await listed(t);
  const app = await f.put('a.yml', 'a: 1\n');
  await chmod(app, 0o666);
  const first = await summaryOf(lister, RECHECK_ALL);
  await putEnv(f, 'a', 'K=1\n');
  // a.yml is refused: named on every resync (no kept read proves it), a.env is not.
  assert.deepEqual([...((await lister.differences()) ?? [])], ['a.yml']);
  await chmod(app, 0o644);
  await resync(f, lister, first, ['a.yml']);
});

test('run beside a pass, it throws nothing and names a change made before it started', async (t) => {
  const { f, lister } = await listed(t);
  for (let i = 0; i < 100; i++) {
    await f.put(`app-${i}.yml`, `n: ${i}\n`);
    await putEnv(f, `app-${i}`, `K=${i}\n`);
  }
  const first = await summaryOf(lister, RECHECK_ALL);
  await putEnv(f, 'app-50', 'K=changed\n');
  await f.put('app-70.yml', 'changed: true\n');
  const [quiet, names] = await Promise.all([summaryOf(lister, { all: false, names: new Set(['app-1.yml']) }), lister.differences()]);
  assert.deepEqual(quiet, first, 'the pass saw neither change');
  assert.deepEqual([...(names ?? [])].sort(), ['app-50.env', 'app-70.yml']);
  await resync(f, lister, first, ['app-50.env', 'app-70.yml']);
});
