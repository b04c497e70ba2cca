// Issue 18: an event pass lists apps.d from the last pass. An app whose file and NAME.env no event
// named is the very ListedApp object of the last pass (planning may memoise on it); one whose
// file or NAME.env an event named is read again and is a new object.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RECHECK_ALL, type Recheck } from '../../src/appsdir/scan.ts';
import { createAppLister, type AppLister } from '../../src/controller/adapters.ts';
import type { ListedApp } from '../../src/controller/desired.ts';
import { createLogger } from '../../src/log/logger.ts';
import { createEnvFileReader } from '../../src/secrets/env-file.ts';
import { collectLines } from '../log/collect.ts';
import { makeFixture, type Fixture } from '../appsdir/scan-fixture.ts';

const owner = process.getuid?.() ?? 0;
const only = (...names: string[]): Recheck => ({ all: false, names: new Set(names) });

// A lister over a fresh apps.d; `forgotten` collects the names it says left the listing.
async function makeLister(t: Parameters<typeof makeFixture>[0]): Promise<{ f: Fixture; lister: AppLister; forgotten: string[] }> {
  const f = await makeFixture(t, { wallNow: () => Date.now() + 5000 });
  const forgotten: string[] = [];
  const log = createLogger({ level: 'debug', stream: collectLines().stream });
  const lister = createAppLister({ scanner: f.scanner, envs: createEnvFileReader({ owner, wallNow: () => Date.now() + 5000 }), dir: f.dir, log, forget: (name) => forgotten.push(name) });
  return { f, lister, forgotten };
}

async function appsOf(lister: AppLister, recheck: Recheck): Promise<Map<string, ListedApp>> {
  const listing = await lister.listApps(recheck);
  assert.ok(listing.ok);
  return new Map(listing.apps.map((a) => [a.name, a]));
}

async function putEnv(f: Fixture, name: string, text: string): Promise<void> {
  const path = join(f.dir, `${name}.env`);
  await writeFile(path, text);
  await chmod(path, 0o600);
}

const envOf = (app: ListedApp | undefined) => (app?.kind === 'settled' && app.env?.ok ? app.env.entries : undefined);

test('an unchanged app is the same ListedApp object across event passes; a named file or NAME.env makes a new one', async (t) => {
  const { f, lister } = await makeLister(t);
  await f.put('a.yml', 'a: 1\n');
  await f.put('b.yml', 'b: 1\n');
  await putEnv(f, 'b', 'K=1\n');
  await appsOf(lister, RECHECK_ALL);
  f.clock.t += f.settleMs;
  const settled = await appsOf(lister, RECHECK_ALL);
  const [a, b] = [settled.get('a'), settled.get('b')];
  assert.equal(a?.kind, 'settled');
  assert.deepEqual(envOf(b), [{ key: 'K', value: '1' }]);

  const quiet = await appsOf(lister, only());
  assert.equal(quiet.get('a'), a, 'a: the same object');
  assert.equal(quiet.get('b'), b, 'b: the same object');

  await putEnv(f, 'b', 'K=2\n');
  const envEvent = await appsOf(lister, only('b.env'));
  assert.equal(envEvent.get('a'), a);
  assert.notEqual(envEvent.get('b'), b, 'b.env was named: a new object');
  assert.deepEqual(envOf(envEvent.get('b')), [{ key: 'K', value: '2' }]);
  assert.equal((await appsOf(lister, only('a.env'))).get('b'), envEvent.get('b'), 'and that one is kept in turn');

  await f.put('a.yml', 'a: 2\n');
  const fileEvent = await appsOf(lister, only('a.yml'));
  assert.notEqual(fileEvent.get('a'), a);
  assert.equal(fileEvent.get('a')?.kind, 'unsettled');
  assert.equal(fileEvent.get('b'), envEvent.get('b'));
});

test('an app that settles again on a pass no event named has its NAME.env read afresh', async (t) => {
  const { f, lister } = await makeLister(t);
  await f.put('a.yml', 'a: 1\n');
  await putEnv(f, 'a', 'K=1\n');
  await appsOf(lister, RECHECK_ALL);
  f.clock.t += f.settleMs;
  assert.deepEqual(envOf((await appsOf(lister, RECHECK_ALL)).get('a')), [{ key: 'K', value: '1' }]);
  await f.put('a.yml', 'a: 2\n');
  assert.equal((await appsOf(lister, only('a.yml'))).get('a')?.kind, 'unsettled');
  // The watcher missed this one, but the app was not settled since its NAME.env was last read.
  await putEnv(f, 'a', 'K=2\n');
  f.clock.t += f.settleMs;
  assert.deepEqual(envOf((await appsOf(lister, only())).get('a')), [{ key: 'K', value: '2' }]);
});

test('the names that left the listing are forgotten, and only on the pass they leave', async (t) => {
  const { f, lister, forgotten } = await makeLister(t);
  for (const name of ['a', 'b', 'c']) await f.put(`${name}.yml`, `${name}: 1\n`);
  await appsOf(lister, RECHECK_ALL);
  f.clock.t += f.settleMs;
  await appsOf(lister, RECHECK_ALL);
  await unlink(join(f.dir, 'b.yml'));
  const gone = await appsOf(lister, only('b.yml'));
  assert.deepEqual([...gone.keys()], ['a', 'c']);
  assert.deepEqual(forgotten, ['b']);
  await appsOf(lister, only());
  await appsOf(lister, RECHECK_ALL);
  assert.deepEqual(forgotten, ['b']);
});
