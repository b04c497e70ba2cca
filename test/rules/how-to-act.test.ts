// docs/apps-dir.md rules 13, 14, 16, 17, 19, 20 and 23 end to end on the simulated host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rename, rm, appendFile } from 'node:fs/promises';
import { startAuthReader } from '../soak/auth-reader.ts';
import { join } from 'node:path';
import { startHarness, composeOf, composeText, freePorts, waitUntil, type Harness } from '../helpers/harness.ts';
import { defer } from '../helpers/cleanup.ts';

const bootedNames = (h: Harness) =>
  h.sim.state.list().filter((v) => v.status === 'running' && v.boot_progress === 'done').map((v) => v.name).sort();
const decisions = (h: Harness, action: string, app?: string) =>
  h.logs.filter((l) => l.fields.ACTION === action && (app === undefined || l.fields.APP === app));

test('rule 13: losing every managed app in one scan waits for a confirming scan R later, with a warning', async (t) => {
  const h = await startHarness(t, { apps: { resync_s: 1.5 } });
  const [p1, p2] = await freePorts(2);
  await h.put('a.yaml', composeText(p1!));
  await h.put('b.yaml', composeText(p2!));
  await h.start();
  await waitUntil(() => bootedNames(h).length === 2, 'both running');
  await rm(join(h.appsDir, 'a.yaml'));
  await rm(join(h.appsDir, 'b.yaml'));
  await waitUntil(() => h.logs.find((l) => l.priority === 4 && String(l.fields.msg).includes('vanished')), 'mass-teardown warning');
  assert.equal(h.sim.state.list().length, 2, 'nothing torn down on the first confirmed scan');
  assert.equal(decisions(h, 'teardown').length, 0);
  await h.until((vms) => vms.length === 0, 'teardown after the second scan');
});

test('rule 14: edits during an upgrade end in exactly one follow-up upgrade to the final content', async (t) => {
  const h = await startHarness(t);
  const [port] = await freePorts(1);
  await h.put('web.yaml', composeText(port!, 'v1'));
  await h.start();
  await waitUntil(() => bootedNames(h).includes('web'), 'web running');
  h.sim.faults.setLatency(300, 'StartVm');
  await h.put('web.yaml', composeText(port!, 'v2'));
  await waitUntil(() => decisions(h, 'upgrade', 'web').length === 1, 'first upgrade started');
  for (const v of ['v3', 'v4', 'v5']) await h.put('web.yaml', composeText(port!, v));
  await waitUntil(async () => (await h.statuses()).find((s) => s.phase === 'running' && h.sim.state.list()[0]?.configuration?.compose_file.includes('# v5')), 'v5 running');
  await h.quiesce();
  const upgrades = decisions(h, 'upgrade', 'web');
  assert.equal(upgrades.length, 2, `upgrades: ${upgrades.map((u) => u.fields.TO).join(', ')}`);
  assert.ok(h.sim.state.list()[0]!.configuration!.compose_file.includes('# v5'));
});

test('rule 16: a failing deploy retries with backoff, never hot; a new file version retries at once', async (t) => {
  const h = await startHarness(t, { apps: { backoff_initial_s: 1, backoff_max_s: 60 } });
  const [port] = await freePorts(1);
  h.sim.faults.failNext('CreateVm', { count: 100, message: 'injected failure' });
  await h.put('api.yaml', composeText(port!, 'v1'));
  await h.start();
  const failures = () => h.logs.filter((l) => l.fields.APP === 'api' && l.priority === 3);
  await waitUntil(() => h.sim.faults.calls().filter((c) => c === 'CreateVm').length >= 3, 'three attempts', 15_000);
  const times = h.logs.filter((l) => l.fields.ACTION === 'deploy' && l.fields.APP === 'api' && l.priority >= 6).map((l) => Date.parse(String(l.fields.time)));
  for (let i = 1; i < 3; i++) assert.ok(times[i]! - times[i - 1]! >= 700, `attempt ${i} came ${times[i]! - times[i - 1]!} ms after the previous one`);
  assert.ok(failures().length >= 1);
  h.sim.faults.reset();
  // The backoff is now 4 s or more; a new version must not wait for it.
  const before = Date.now();
  await h.put('api.yaml', composeText(port!, 'v2'));
  await waitUntil(() => bootedNames(h).includes('api'), 'api running with v2');
  assert.ok(Date.now() - before < 3500, 'the new hash cancelled the backoff');
});

test('rule 17: a restart over running apps makes zero operations, adopting the VMs (even with the state lost)', async (t) => {
  const h = await startHarness(t);
  const ports = await freePorts(3);
  for (const [i, n] of ['a', 'b', 'c'].entries()) await h.put(`${n}.yaml`, composeText(ports[i]!));
  await h.start();
  await waitUntil(() => bootedNames(h).length === 3, 'three running');
  await h.quiesce();
  const ids = h.sim.state.list().map((v) => v.id).sort();
  const before = h.mutations().length;
  await h.stop();
  await h.start();
  await waitUntil(async () => (await h.statuses()).filter((s) => s.phase === 'running').length === 3, 'statuses running');
  await h.quiesce();
  assert.equal(h.mutations().length, before, 'no mutating RPC after a plain restart');
  await h.stop();
  await rm(join(h.config.state_dir, 'apps'), { recursive: true });
  await h.start();
  await waitUntil(async () => (await h.statuses()).filter((s) => s.phase === 'running').length === 3, 'statuses running again');
  await h.quiesce();
  assert.equal(h.mutations().length, before, 'no mutating RPC after losing the state records');
  assert.deepEqual(h.sim.state.list().map((v) => v.id).sort(), ids, 'same VMs, none duplicated');
});

test('rule 19: mv a.yml b.yml tears down a and deploys b; both lines mention the rename', async (t) => {
  const h = await startHarness(t);
  const [port] = await freePorts(1);
  await h.put('old.yaml', `services:\n  web:\n    image: nginx\n`);
  await h.put('keep.yaml', composeText(port!));
  await h.start();
  await waitUntil(() => bootedNames(h).join() === 'keep,old', 'old running');
  await rename(join(h.appsDir, 'old.yaml'), join(h.appsDir, 'new.yaml'));
  await waitUntil(() => bootedNames(h).join() === 'keep,new' && h.sim.state.list().length === 2, 'new running, old gone');
  const deploy = decisions(h, 'deploy', 'new').at(-1);
  const teardown = decisions(h, 'teardown', 'old').at(-1);
  assert.match(String(deploy?.fields.REASON), /renamed from "old"/);
  assert.match(String(teardown?.fields.REASON), /renamed to "new"/);
});

test('rule 20: stopping the supervisor stops no app', async (t) => {
  const h = await startHarness(t);
  const [port] = await freePorts(1);
  await h.put('web.yaml', composeText(port!));
  await h.start();
  await waitUntil(() => bootedNames(h).includes('web'), 'web running');
  const before = h.mutations().length;
  await h.stop();
  assert.equal(h.mutations().length, before);
  assert.deepEqual(bootedNames(h), ['web']);
});

test('rule 23: a comment-only edit is a change: the measured compose hash moves', async (t) => {
  const h = await startHarness(t);
  const [port] = await freePorts(1);
  await h.put('web.yaml', composeText(port!));
  await h.start();
  await waitUntil(() => bootedNames(h).includes('web'), 'web running');
  const first = (await h.statuses())[0]!.compose_hash;
  await appendFile(join(h.appsDir, 'web.yaml'), '# only a comment\n');
  const second = await waitUntil(async () => {
    const s = (await h.statuses())[0];
    return s?.phase === 'running' && s.compose_hash !== first ? s.compose_hash : undefined;
  }, 'upgrade to the commented file');
  assert.notEqual(second, first);
  assert.equal(decisions(h, 'upgrade', 'web').length, 1);
});

test('rule 15: an app whose VM never finishes booting does not delay another app', async (t) => {
  const h = await startHarness(t, { apps: { concurrency: 2, boot_timeout_s: 60 } });
  const [p1, p2] = await freePorts(2);
  h.sim.faults.stallBoot('stuck');
  await h.put('stuck.yaml', composeText(p1!));
  await h.start();
  await waitUntil(() => h.sim.state.list().some((v) => v.name === 'stuck'), 'stuck VM created');
  await h.put('quick.yaml', composeText(p2!));
  await waitUntil(() => bootedNames(h).includes('quick'), 'quick running while stuck still boots');
  const stuck = h.sim.state.list().find((v) => v.name === 'stuck');
  assert.notEqual(stuck?.boot_progress, 'done');
  assert.equal((await h.statuses()).find((s) => s.app === 'stuck')?.phase, 'deploying');
});

test('rule 18: an upgrade that fails after UpdateVm, before the restart, still reboots the guest into the new content', async (t) => {
  const h = await startHarness(t);
  const [port] = await freePorts(1);
  await h.put('web.yaml', composeText(port!, 'v1'));
  await h.start();
  const vm = await h.deployed('web');
  // UpdateVm rewrites the manifest; the guest keeps running v1 until it is restarted. Both ways
  // of stopping it fail once, so the operation ends with the manifest at v2 and v1 running.
  h.sim.faults.failNext('ShutdownVm', { message: 'injected failure' });
  h.sim.faults.failNext('StopVm', { message: 'injected failure' });
  const v2 = composeText(port!, 'v2');
  await h.put('web.yaml', v2);
  await waitUntil(() => h.logs.find((l) => l.fields.APP === 'web' && l.priority === 3), 'the upgrade failed');
  await waitUntil(() => h.sim.state.launchedCompose(vm.id).includes('# v2') && composeOf(h.sim.state.get(vm.id)!)?.includes('# v2'), 'the guest booted v2', 15_000);
  await h.deployed('web', v2);
  assert.equal(h.sim.state.list().length, 1);
});

test('rule 15: files that settle together register their hashes in one allowlist write, ahead of the N-at-a-time operations', async (t) => {
  const h = await startHarness(t, { apps: { concurrency: 2 } });
  const reader = startAuthReader(join(h.dir, 'auth-config.json'));
  defer(t, () => reader.close());
  const ports = await freePorts(12);
  // Present at start-up, the files settle in the same scan (a batch landing while the supervisor
  // runs settles in a few scans, one per group of close ctimes; bench/burst.ts measures that).
  for (const [i, port] of ports.entries()) await h.put(`app${i}.yaml`, composeText(port));
  await h.start();
  await h.until((vms) => vms.filter((v) => v.status === 'running' && v.boot_progress === 'done').length === 12, 'all twelve running', 20_000);
  await h.quiesce();
  assert.equal(Object.keys(await h.allowlist()).length, 12, 'one entry per app');
  assert.equal(reader.stats().writes, 1, 'one allowlist write for 12 apps');
});

test('rule 8: a held app keeps only the hash its VM has in the allowlist, and its crashed VM is started again', async (t) => {
  const h = await startHarness(t);
  const [p1, p2] = await freePorts(2);
  const text = composeText(p2!, 'web');
  await h.put('web.yaml', text);
  await h.start();
  const web = await h.deployed('web', text);
  // never: its deploys fail, so the hash it registered runs nowhere.
  h.sim.faults.failNext('CreateVm', { count: 1000, message: 'injected failure' });
  await h.put('never.yaml', composeText(p1!, 'never'));
  await waitUntil(async () => (await h.statuses()).find((s) => s.app === 'never' && s.phase === 'failed'), 'never failed');
  assert.equal(Object.keys(await h.allowlist()).length, 2, 'the hash of never was registered');
  for (const name of ['never', 'web']) await h.put(`${name}.yaml`, 'services: [not, a, mapping]\n');
  await waitUntil(async () => (await h.statuses()).filter((s) => s.phase === 'invalid').length === 2, 'both invalid');
  await waitUntil(async () => Object.keys(await h.allowlist()).length === 1, 'the entry of never, which runs nowhere, removed');
  assert.deepEqual(Object.values(await h.allowlist())[0]?.composeHashes, [createHash('sha256').update(web.configuration!.compose_file).digest('hex')]);
  h.sim.faults.crashVm(web.id);
  await h.until((vms) => vms.some((v) => v.id === web.id && v.status === 'running' && v.boot_progress === 'done'), 'web started again with its last valid content');
  assert.equal(composeOf(h.sim.state.get(web.id)!), text);
});

test('rule 18: an upgrade cut short after UpdateVm whose file is then held still restarts the guest into its manifest', async (t) => {
  const h = await startHarness(t);
  const [port, other] = await freePorts(2);
  await h.put('web.yaml', composeText(port!, 'v1'));
  await h.start();
  const vm = await h.deployed('web');
  h.sim.faults.failNext('ShutdownVm', { message: 'injected failure' });
  h.sim.faults.failNext('StopVm', { message: 'injected failure' });
  // v2 moves the app to another port; the guest keeps forwarding the old one until it restarts.
  await h.put('web.yaml', composeText(other!, 'v2'));
  await waitUntil(() => h.logs.find((l) => l.fields.APP === 'web' && l.priority === 3), 'the upgrade failed');
  await h.put('web.yaml', 'services: [not, a, mapping]\n');
  await waitUntil(() => h.sim.state.launchedCompose(vm.id).includes('# v2'), 'the guest booted its manifest (v2)', 15_000);
  assert.equal(h.sim.state.get(vm.id)?.configuration?.ports[0]?.host_port, other);
});

test('rule 18: a teardown cut short after the VM went, whose file comes back invalid, still drops the allowlist entry', async (t) => {
  const h = await startHarness(t);
  const [port] = await freePorts(1);
  await h.put('web.yaml', composeText(port!, 'v1'));
  await h.start();
  await h.deployed('web');
  const authPath = join(h.dir, 'auth-config.json');
  // The allowlist is away while the teardown runs: the VM goes, dropping its entry fails.
  await rename(authPath, `${authPath}.away`);
  await rm(h.path('web.yaml'));
  await h.until((vms) => vms.length === 0, 'the VM removed');
  await waitUntil(() => h.logs.find((l) => l.fields.APP === 'web' && l.fields.ACTION === 'teardown' && l.priority === 3), 'the teardown failed');
  await h.put('web.yaml', 'services: [not, a, mapping]\n');
  await rename(`${authPath}.away`, authPath);
  await waitUntil(async () => Object.keys(await h.allowlist()).length === 0, 'the entry of web, which runs nowhere, removed');
});
