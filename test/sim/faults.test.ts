import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createVmmClient } from '../../src/vmm/client.ts';
import { appCompose, freePort, startTestHost } from './fixtures.ts';
import { defer } from '../helpers/cleanup.ts';

async function setup(t: TestContext) {
  const host = await startTestHost(t, { kmsUrls: ['https://10.0.2.2:9201'] });
  const client = createVmmClient({ url: host.vmmUrl });
  defer(t, () => client.close());
  const create = async (name: string, extra: { stopped?: boolean; port?: number } = {}) =>
    (
      await client.createVm({
        name,
        image: 'dstack-0.5.11',
        compose_file: appCompose(name),
        stopped: extra.stopped ?? false,
        ports: extra.port === undefined ? [] : [{ protocol: 'tcp', host_port: extra.port, vm_port: 80, host_address: '127.0.0.1' }],
      })
    ).id;
  return { host, client, create, faults: host.faults };
}

test('failNext fails the next N calls of one method with the given message, then recovers', async (t) => {
  const { client, faults } = await setup(t);
  faults.failNext('Version', { count: 2, message: 'boom' });
  await assert.rejects(client.version(), { code: 'VMM_RPC', vmmMessage: 'boom' });
  assert.deepEqual(await client.listImages().then((images) => images.length), 1);
  await assert.rejects(client.version(), { vmmMessage: 'boom' });
  assert.equal((await client.version()).rev, 'simulated');
  assert.deepEqual(faults.calls(), ['Version', 'ListImages', 'Version', 'Version']);
});

test('failNext with afterApply runs the call and still fails the reply (a lost CreateVm reply)', async (t) => {
  const { host, create, faults } = await setup(t);
  faults.failNext('CreateVm', { afterApply: true });
  await assert.rejects(create('ghost'), { vmmMessage: 'simulated failure of CreateVm' });
  assert.deepEqual(host.state.list().map((vm) => vm.name), ['ghost']);
});

test('setLatency delays every call or one method; reset removes it', async (t) => {
  const { client, faults } = await setup(t);
  // Which of two concurrent calls finishes first: robust on a loaded machine, unlike upper bounds.
  const order = async (calls: Record<string, () => Promise<unknown>>) => {
    const done: string[] = [];
    await Promise.all(Object.entries(calls).map(([name, call]) => call().then(() => done.push(name))));
    return done;
  };
  const elapsed = async (call: () => Promise<unknown>) => {
    const start = performance.now();
    await call();
    return performance.now() - start;
  };
  faults.setLatency(300, 'Status');
  assert.deepEqual(await order({ status: () => client.status(), version: () => client.version() }), ['version', 'status']);
  assert.ok((await elapsed(() => client.status())) >= 290);
  faults.setLatency(0, 'Status');
  faults.setLatency(300);
  assert.ok((await elapsed(() => client.version())) >= 290);
  faults.reset();
  faults.setLatency(300, 'ListImages');
  assert.deepEqual(await order({ images: () => client.listImages(), version: () => client.version() }), ['version', 'images']);
});

test('crashVm leaves the VM exited with its started flag set', async (t) => {
  const { host, client, create, faults } = await setup(t);
  const id = await create('crashy');
  await host.state.waitFor((vms) => vms[0]?.boot_progress === 'done');
  faults.crashVm(id);
  const info = await client.getInfo(id);
  assert.equal(info.info?.status, 'exited');
  assert.match(info.info?.exited_at ?? '', /^\d{4}-\d\d-\d\dT/);
});

test('restartVmm: socket down meanwhile, every VM stops, started ones boot again with new kms_urls', async (t) => {
  const { host, client, create, faults } = await setup(t);
  const port = await freePort();
  const running = await create('up', { port });
  const stopped = await create('down', { stopped: true });
  await host.state.waitFor((vms) => vms.find((vm) => vm.id === running)?.boot_progress === 'done');

  const restarted = faults.restartVmm({ downtimeMs: 500, kmsUrls: ['https://10.0.2.2:9999'] });
  assert.deepEqual(host.state.list().map((vm) => [vm.name, vm.status, vm.boot_progress]), [
    ['up', 'exited', ''],
    ['down', 'stopped', ''],
  ]);
  const during = createVmmClient({ url: host.vmmUrl });
  defer(t, () => during.close());
  await assert.rejects(during.version(), { code: 'VMM_UNREACHABLE' });
  await restarted;

  await host.state.waitFor((vms) => vms.find((vm) => vm.id === running)?.boot_progress === 'done');
  assert.equal(host.state.get(stopped)?.status, 'stopped');
  assert.deepEqual((await client.getMeta()).kms.urls, ['https://10.0.2.2:9999']);
  const res = await fetch(`http://127.0.0.1:${port}/`);
  assert.equal(res.status, 200);
  await res.text();
});

test('callLog attributes each call to its VM (id and name) and says how it ended', async (t) => {
  const { host, client, create, faults } = await setup(t);
  const id = await create('logged');
  await host.state.waitFor((vms) => vms[0]?.boot_progress === 'done');
  faults.failNext('StopVm');
  await assert.rejects(client.stopVm(id), { vmmMessage: 'simulated failure of StopVm' });
  faults.failNext('StopVm', { afterApply: true });
  await assert.rejects(client.stopVm(id));
  await client.startVm(id);
  await client.removeVm(id);
  await host.state.waitFor((vms) => vms.length === 0);
  // Once the VM is gone its id names nothing: the refused call has no name.
  await assert.rejects(client.startVm(id), { vmmMessage: /VM not found/ });
  faults.failNext('CreateVm', { afterApply: true });
  await assert.rejects(create('ghost'));
  const ghost = host.state.list()[0]?.id;
  await client.status();
  const rows = faults.callLog().map(({ method, vmId, name, outcome }) => [method, vmId === id ? 'id' : vmId === ghost ? 'ghost' : vmId, name, outcome]);
  assert.deepEqual(rows, [
    ['CreateVm', 'id', 'logged', 'ok'],
    ['StopVm', 'id', 'logged', 'fault'],
    ['StopVm', 'id', 'logged', 'fault-after-apply'],
    ['StartVm', 'id', 'logged', 'ok'],
    ['RemoveVm', 'id', 'logged', 'ok'],
    ['StartVm', 'id', undefined, 'rejected'],
    ['CreateVm', 'ghost', 'ghost', 'fault-after-apply'],
    ['Status', undefined, undefined, 'ok'],
  ]);
  assert.deepEqual(faults.calls(), rows.map(([method]) => method));
});
