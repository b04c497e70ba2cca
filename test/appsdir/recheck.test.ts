// Issue 18: an event pass looks again only at the entries the watcher named (plus settling and
// symlinked ones); every other file is taken as the last scan saw it, and a full scan looks at
// all of them again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Recheck } from '../../src/appsdir/scan.ts';
import { entryOf, makeFixture, settle, settledText } from './scan-fixture.ts';

const sha = (text: string) => createHash('sha256').update(text).digest('hex');
const only = (...names: string[]): Recheck => ({ all: false, names: new Set(names) });

test('an event pass looks only at the named file: a change no event named waits for the next full scan', async (t) => {
  const f = await makeFixture(t);
  await f.put('a.yml', 'a: 1\n');
  await f.put('b.yml', 'b: 1\n');
  await settle(f);
  // b changes in content and becomes world-writable, either of which a look at it would see.
  await f.put('b.yml', 'b: 2, changed\n');
  await chmod(join(f.dir, 'b.yml'), 0o666);
  await f.put('a.yml', 'a: 2\n');
  const event = await f.scanner.scan(only('a.yml'));
  assert.ok(event.kind === 'listing');
  assert.equal(entryOf(event, 'a').state, 'unsettled', 'the named file was looked at');
  assert.equal(settledText(event, 'b'), 'b: 1\n', 'the other file was not looked at');
  f.clock.t += f.settleMs;
  const timer = await f.scanner.scan(only());
  assert.ok(timer.kind === 'listing');
  assert.equal(settledText(timer, 'a'), 'a: 2\n', 'a settling file is looked at with no event');
  assert.equal(settledText(timer, 'b'), 'b: 1\n');
  const full = await f.list();
  assert.equal(entryOf(full, 'b').state, 'unsettled', 'the full scan sees the change');
  f.clock.t += f.settleMs;
  const b = entryOf(await f.list(), 'b');
  assert.ok(b.state === 'refused' && b.code === 'APP_WRITABLE');
});

test('a new file an event named is looked at on every event pass until it settles', async (t) => {
  const f = await makeFixture(t);
  await f.put('a.yml', 'a: 1\n');
  await settle(f);
  await f.put('new.yml', 'n: 1\n');
  const event = await f.scanner.scan(only('new.yml'));
  assert.ok(event.kind === 'listing');
  assert.equal(entryOf(event, 'new').state, 'unsettled');
  f.clock.t += f.settleMs;
  const later = await f.scanner.scan(only());
  assert.ok(later.kind === 'listing');
  const entry = entryOf(later, 'new');
  assert.ok(entry.state === 'settled' && entry.sha256 === sha('n: 1\n'));
});

test('a symlinked app is looked at on every pass: its target can change under another name', async (t) => {
  const f = await makeFixture(t);
  await mkdir(join(f.dir, 'data'));
  const target = join(f.dir, 'data', 'real.txt');
  await writeFile(target, 'v: 1\n');
  await chmod(target, 0o644);
  await symlink('data/real.txt', join(f.dir, 'linked.yml'));
  assert.equal(settledText(await settle(f), 'linked'), 'v: 1\n');
  await writeFile(target, 'v: 2\n');
  const event = await f.scanner.scan(only());
  assert.ok(event.kind === 'listing');
  assert.equal(entryOf(event, 'linked').state, 'unsettled', 'the change inside data/ (no watch there) is seen');
});
