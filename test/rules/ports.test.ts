// docs/design.md "Ports" end to end: a host port another app publishes is refused with both names; a
// port the VMM's port-mapping range does not allow fails with the VMM's own words in the status.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, composeText, freePorts, waitUntil } from '../helpers/harness.ts';

test('two apps publishing the same host port: the second is refused naming both, the first keeps running', async (t) => {
  const h = await startHarness(t);
  const [port] = await freePorts(1);
  await h.put('blog.yaml', composeText(port!));
  await h.start();
  await h.until((vms) => vms.some((v) => v.name === 'blog' && v.boot_progress === 'done'), 'blog running');
  await h.put('shop.yaml', composeText(port!, 'shop'));
  const shop = await waitUntil(async () => (await h.statuses()).find((s) => s.app === 'shop' && s.phase === 'invalid'), 'shop refused');
  assert.match(shop.last_error ?? '', new RegExp(`shop\\.yaml: port ${port}/tcp is already published by app "blog" \\(.*blog\\.yaml\\)`));
  const conflict = h.logs.find((l) => l.fields.ACTION === 'conflict' && l.fields.APP === 'shop');
  assert.equal(conflict?.priority, 4);
  await h.quiesce();
  assert.deepEqual(h.sim.state.list().map((v) => v.name), ['blog']);
  assert.ok(!h.mutations().slice(1).includes('CreateVm'), 'only blog was ever created');
});

test('a port outside the VMM port-mapping range: the VMM\'s own message reaches the status', async (t) => {
  const h = await startHarness(t, { sim: { portMapping: { enabled: true, address: '127.0.0.1', range: [{ protocol: 'tcp', from: 1, to: 20000 }] } } });
  await h.put('big.yaml', composeText(30080));
  await h.start();
  const failed = await waitUntil(async () => (await h.statuses()).find((s) => s.app === 'big' && s.phase === 'failed'), 'big failed');
  assert.match(failed.last_error ?? '', /dstack-vmm CreateVm failed: .*30080/);
  assert.equal(h.sim.state.list().length, 0);
});

test('a port held by the running VM of an app whose file turned invalid is a conflict, not a CreateVm loop', async (t) => {
  const h = await startHarness(t);
  const [port] = await freePorts(1);
  await h.put('blog.yaml', composeText(port!, 'blog'));
  await h.start();
  await h.deployed('blog');
  await h.put('blog.yaml', 'services: [not, a, mapping]\n');
  await waitUntil(async () => (await h.statuses()).find((s) => s.app === 'blog' && s.phase === 'invalid'), 'blog invalid');
  await h.put('shop.yaml', composeText(port!, 'shop'));
  const shop = await waitUntil(async () => (await h.statuses()).find((s) => s.app === 'shop' && s.phase === 'invalid'), 'shop refused');
  assert.match(shop.last_error ?? '', new RegExp(`port ${port}/tcp is already published by app "blog"`));
  await h.quiesce();
  assert.deepEqual(h.mutations().filter((m) => m === 'CreateVm'), ['CreateVm'], 'the CreateVm of blog only, none for shop');
  assert.equal(h.sim.state.list().find((v) => v.name === 'blog')?.status, 'running', 'blog keeps running');
});

test('a port an upgrading app moves away from: the app asking for it waits until the old guest lets go, then deploys once', async (t) => {
  const h = await startHarness(t);
  const [p, q] = await freePorts(2);
  await h.put('alpha.yaml', composeText(p!, 'alpha'));
  await h.start();
  await h.deployed('alpha');
  // alpha's old guest keeps forwarding p while its stop fails: its upgrade is held up for seconds.
  h.sim.faults.failNext('ShutdownVm', { count: 2 });
  h.sim.faults.failNext('StopVm', { count: 2 });
  const moved = composeText(q!, 'alpha-v2');
  await h.put('alpha.yaml', moved);
  await h.put('foxtrot.yaml', composeText(p!, 'foxtrot'));
  await h.deployed('alpha', moved);
  await h.deployed('foxtrot');
  const foxtrotCalls = h.sim.faults.callLog().filter((c) => c.name === 'foxtrot' && c.method !== 'Status');
  assert.deepEqual(foxtrotCalls.map((c) => `${c.method} ${c.outcome}`), ['CreateVm ok'], 'one CreateVm, no refusal, no restart');
  assert.ok(!h.logs.some((l) => l.fields.APP === 'foxtrot' && /forwarding|failed/.test(String(l.fields.REASON ?? l.fields.MESSAGE))), 'foxtrot never failed');
  // While it waited, the journal said why, once.
  const waited = h.decisions('foxtrot').filter((l) => /still published by the VM of app "alpha"/.test(String(l.fields.REASON)));
  assert.equal(waited.length, 1);
  assert.match(String(waited[0]!.fields.REASON), new RegExp(`port ${p}/tcp`));
  await h.quiesce();
  const quiet = h.mutations().length;
  await h.checkpoint();
  assert.equal(h.mutations().length, quiet + 1, 'after running nothing but the checkpoint is done');
});

// Soak seed 25303: an upgrade whose StartVm launched the guest but failed left its intent open with
// the ports the old guest was launched with; a second upgrade carried them on, its UpdateVm did not
// get through, and the app's file was then held: the ports stayed claimed for ever, and an app
// asking for one never deployed. Once the stop is done the old guest binds nothing.
test('an upgrade whose StartVm failed after starting the guest: the old guest\'s port is free for another app, even once the upgrading app is held', async (t) => {
  const h = await startHarness(t);
  const [p, q, r] = await freePorts(3);
  await h.put('alpha.yaml', composeText(p!, 'alpha'));
  await h.start();
  await h.deployed('alpha');
  h.sim.faults.failNext('StartVm', { afterApply: true });
  await h.put('alpha.yaml', composeText(q!, 'alpha-v2'));
  await waitUntil(async () => (await h.statuses()).find((s) => s.app === 'alpha' && s.phase === 'failed'), "alpha's upgrade failed at StartVm");
  // A second upgrade begins before the retry, and its UpdateVm does not get through.
  h.sim.faults.failNext('UpdateVm', { count: 1000 });
  await h.put('alpha.yaml', composeText(r!, 'alpha-v3'));
  await waitUntil(() => h.sim.faults.callLog().some((c) => c.method === 'UpdateVm' && c.outcome === 'fault'), "alpha's second UpdateVm refused");
  await h.put('alpha.yaml', 'services: [\n');
  await waitUntil(async () => (await h.statuses()).find((s) => s.app === 'alpha' && s.phase === 'invalid'), 'alpha held');
  await h.put('foxtrot.yaml', composeText(p!, 'foxtrot'));
  await h.deployed('foxtrot');
  assert.equal(h.sim.state.list().find((v) => v.name === 'alpha')?.configuration?.ports[0]?.host_port, q, "alpha's VM keeps its v2 manifest");
});
