// Issue 13, item 2: one state record that cannot be read (garbage, or written by a newer release)
// holds its own app and nothing else: other apps deploy and tear down, the supervisor starts,
// and moving the file aside lets the app's VM be adopted again, not duplicated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startHarness, composeText, freePorts, waitUntil, type Harness } from '../helpers/harness.ts';
import { rescan, startWithApp } from '../helpers/rules.ts';

const vmsNamed = (h: Harness, name: string) => h.sim.state.list().filter((v) => v.name === name);
const creates = (h: Harness) => h.mutations().filter((m) => m === 'CreateVm').length;
const statusOf = async (h: Harness, app: string) => (await h.statuses()).find((s) => s.app === app);


test('issue 13: a garbage state record holds only its app; others deploy and tear down; a restart starts; moved aside, the VM is adopted', { timeout: 120_000 }, async (t) => {
  const h = await startHarness(t);
  const [p1, p2, p3] = await freePorts(3);
  await h.put('m1.yml', composeText(p1!));
  await h.put('m2.yml', composeText(p2!));
  await h.start();
  const m1 = await h.deployed('m1');
  await h.deployed('m2');
  const record = join(h.config.state_dir, 'apps', 'm1.json');
  await writeFile(record, '{"version": 1, "name": "m1", garbage\n');

  await h.put('m3.yml', composeText(p3!));
  const m3 = await h.deployed('m3');
  await rm(h.path('m2.yml'));
  await h.until((vms) => !vms.some((v) => v.name === 'm2'), 'm2 torn down');
  await waitUntil(async () => (await statusOf(h, 'm2')) === undefined, 'm2 status removed');

  const held = await waitUntil(async () => {
    const s = await statusOf(h, 'm1');
    return s?.phase === 'failed' && s;
  }, 'm1 held as failed');
  assert.ok(held.last_error?.startsWith(`${record}: corrupt state record (not JSON)`), String(held.last_error));
  assert.equal(held.code, 'STATE_CORRUPT', 'issue 15: the status carries the code');
  assert.ok(held.last_error?.includes(`mv ${record} ${record}.bad`), 'the status says what to do');
  await rescan(h);
  await rescan(h);
  assert.deepEqual(vmsNamed(h, 'm1').map((v) => [v.id, v.status]), [[m1.id, 'running']], 'the held app keeps its one VM');
  assert.equal(h.decisions('m1', 'refused').length, 1, 'the unreadable record is logged once, not every pass');
  assert.equal(h.logs.filter((l) => l.fields.APP === 'm1' && l.priority <= 3).length, 0, 'no retry loop of errors for m1');

  await h.stop();
  await h.start();
  await rescan(h);
  assert.deepEqual(vmsNamed(h, 'm3').map((v) => [v.id, v.status]), [[m3.id, 'running']], 'm3 stays running across the restart');
  assert.equal((await statusOf(h, 'm1'))?.phase, 'failed');
  const createsBefore = creates(h);

  await rename(record, `${record}.bad`);
  await h.deployed('m1', composeText(p1!));
  await h.quiesce();
  assert.deepEqual(vmsNamed(h, 'm1').map((v) => v.id), [m1.id], 'adopted by name and app id: the same VM, no second one');
  assert.equal(creates(h), createsBefore, 'no CreateVm for m1');
  const adopted = await statusOf(h, 'm1');
  assert.equal(adopted?.vm_id, m1.id);
  assert.equal(adopted?.last_error, null);
});

test('issue 13: a record written by a newer release says so in the app status, and holds only that app', { timeout: 60_000 }, async (t) => {
  const h = await startHarness(t);
  const [p1, p2] = await freePorts(2);
  await h.put('m1.yml', composeText(p1!));
  await h.start();
  await h.deployed('m1');
  const record = join(h.config.state_dir, 'apps', 'm1.json');
  await writeFile(record, JSON.stringify({ version: 2, name: 'm1', layout: 'of a later release' }));
  await h.stop();
  await h.start();
  const held = await waitUntil(async () => {
    const s = await statusOf(h, 'm1');
    return s?.phase === 'failed' && s.last_error !== null && s;
  }, 'm1 held');
  assert.ok(held.last_error?.startsWith(`${record}: state record written by a newer dstack-supervisor (version 2`), String(held.last_error));
  assert.equal(held.code, 'STATE_NEWER', 'issue 15: a downgrade has its own code');
  await h.put('m2.yml', composeText(p2!));
  await h.deployed('m2');
});

test('issue 13: moved aside, the record of an app upgraded since its first deploy is rebuilt from the VM its last status named, not duplicated', { timeout: 60_000 }, async (t) => {
  const { h, vm: first, port: p1 } = await startWithApp(t, {}, 'm1');
  await h.put('m1.yml', composeText(p1!, 'v2'));
  await h.deployed('m1', composeText(p1!, 'v2'));
  const record = join(h.config.state_dir, 'apps', 'm1.json');
  await writeFile(record, 'garbage');
  await waitUntil(async () => (await statusOf(h, 'm1'))?.phase === 'failed', 'm1 held');
  const createsBefore = creates(h);
  await rename(record, `${record}.bad`);
  await waitUntil(async () => (await statusOf(h, 'm1'))?.phase === 'running', 'm1 running again');
  await h.quiesce();
  assert.deepEqual(vmsNamed(h, 'm1').map((v) => [v.id, v.app_id]), [[first.id, first.app_id]], 'the same VM, with its app id (of the first content)');
  assert.equal(creates(h), createsBefore, 'no CreateVm for m1');
});

// Found by the soak (seed 7303): the record moved aside and the file deleted before the next pass
// left the VM running with no file, no status and no allowlist entry, owned by nobody. The app id
// its last status named finds it, as adoption does, and the delete is honoured.
test('issue 13: a record moved aside with its file deleted: the VM is found by its last app id and torn down', { timeout: 60_000 }, async (t) => {
  const { h, vm: m1, port: p1 } = await startWithApp(t, {}, 'm1');
  const record = join(h.config.state_dir, 'apps', 'm1.json');
  await writeFile(record, 'garbage');
  await waitUntil(async () => (await statusOf(h, 'm1'))?.phase === 'failed', 'm1 held as failed');

  await rename(record, `${record}.bad`);
  await rm(h.path('m1.yml'));
  await h.until((vms) => !vms.some((v) => v.id === m1.id), 'm1 torn down');
  await waitUntil(async () => (await statusOf(h, 'm1')) === undefined, 'm1 status removed');
  assert.equal((await h.allowlist())[m1.app_id], undefined, 'its allowlist entry is gone too');
  assert.equal(h.decisions('m1', 'teardown').length, 1);
});

// Found by the soak: a record moved aside while the app's file was held (invalid) left its VM
// with nobody to keep its allowlist entry, which a hand edit then removed for good.
test('issue 13: a record moved aside while the file is held: the VM is adopted and its entry kept', { timeout: 60_000 }, async (t) => {
  const { h, vm: m1, port: p1 } = await startWithApp(t, {}, 'm1');
  await h.put('m1.yml', 'services: [not, a, mapping]\n');
  await waitUntil(async () => (await statusOf(h, 'm1'))?.phase === 'invalid', 'm1 held as invalid');
  const record = join(h.config.state_dir, 'apps', 'm1.json');
  await rename(record, `${record}.bad`);
  const path = h.config.auth.config_path;
  const doc = JSON.parse(await readFile(path, 'utf8'));
  const hashes = doc.apps[m1.app_id].composeHashes;
  delete doc.apps[m1.app_id];
  await writeFile(path, JSON.stringify(doc, null, 2));
  await waitUntil(async () => JSON.stringify((await h.allowlist())[m1.app_id]?.composeHashes) === JSON.stringify(hashes), 'm1 entry restored');
  assert.deepEqual(vmsNamed(h, 'm1').map((v) => [v.id, v.status]), [[m1.id, 'running']], 'its VM keeps running');
});

// Found by the soak (seed 15707): the VM of an app held for its record keeps its host ports, but
// nothing claimed them, so a new file asking for one was deployed, failed to boot with EADDRINUSE
// and was retried without end. Its ports are claimed like those of any VM of ours.
test('issue 13: a port held by the VM of an app whose record is unreadable is a port conflict, not a deploy that cannot boot', { timeout: 60_000 }, async (t) => {
  const { h, port: p1 } = await startWithApp(t, {}, 'm1');
  const record = join(h.config.state_dir, 'apps', 'm1.json');
  await writeFile(record, 'garbage');
  await waitUntil(async () => (await statusOf(h, 'm1'))?.phase === 'failed', 'm1 held as failed');
  const createsBefore = creates(h);
  await h.put('m2.yml', composeText(p1!));
  const refused = await waitUntil(async () => {
    const s = await statusOf(h, 'm2');
    return s?.phase === 'invalid' && s;
  }, 'm2 refused for its port');
  assert.equal(refused.code, 'APP_PORT_CONFLICT');
  assert.ok(refused.last_error?.includes(`port ${p1}/tcp is already published by app "m1"`), String(refused.last_error));
  await rescan(h);
  await h.quiesce();
  assert.equal(creates(h), createsBefore, 'no CreateVm for m2');
  assert.deepEqual(vmsNamed(h, 'm2'), []);
});
