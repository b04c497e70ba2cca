import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { createVmmClient } from '../../src/vmm/client.ts';
import type { SimHostOptions } from '../../src/sim/host.ts';
import { appCompose, freePort, startTestHost } from './fixtures.ts';
import type { TestContext } from 'node:test';
import { defer } from '../helpers/cleanup.ts';

async function setup(t: TestContext, options: Partial<SimHostOptions> = {}) {
  const host = await startTestHost(t, options);
  const client = createVmmClient({ url: host.vmmUrl });
  defer(t, () => client.close());
  const create = async (name: string, ports: number[]) =>
    (
      await client.createVm({
        name,
        image: 'dstack-0.5.11',
        compose_file: appCompose(name),
        ports: ports.map((host_port) => ({ protocol: 'tcp', host_port, vm_port: 80, host_address: '127.0.0.1' })),
      })
    ).id;
  return { host, client, create };
}

// The reply of GET / on the port, or the connection error's code.
async function probe(port: number): Promise<string> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(5000) });
    return `${res.status} ${await res.text()}`;
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    return cause?.code ?? String(err);
  }
}

test('a running VM answers HTTP on its host port once booted, naming the app and app id', async (t) => {
  const { host, create } = await setup(t);
  const port = await freePort();
  const id = await create('shop', [port]);
  await host.state.waitFor((vms) => vms[0]?.boot_progress === 'done');
  const appId = host.state.get(id)?.app_id ?? '';
  assert.equal(await probe(port), `200 app shop (app_id ${appId}) on simulated VM ${id}\n`);
});

test('while the guest boots the port resets connections, like slirp with no guest listener', async (t) => {
  const { host, create } = await setup(t, { bootDelayMs: 60_000 });
  const port = await freePort();
  await create('slow', [port]);
  await host.state.waitFor((vms) => vms[0]?.status === 'running');
  assert.match(await probe(port), /ECONNRESET|UND_ERR_SOCKET|other side closed/);
});

test('stopping or removing the VM closes the listener', async (t) => {
  const { host, client, create } = await setup(t);
  const [a, b] = [await freePort(), await freePort()];
  const stopped = await create('a', [a]);
  const removed = await create('b', [b]);
  await host.state.waitFor((vms) => vms.every((vm) => vm.boot_progress === 'done'));
  await client.stopVm(stopped);
  await client.removeVm(removed);
  await host.state.waitFor((vms) => vms.length === 1);
  assert.equal(await probe(a), 'ECONNREFUSED');
  assert.equal(await probe(b), 'ECONNREFUSED');
});

test('UpdateVm ports take effect only at the next launch', async (t) => {
  const { host, client, create } = await setup(t);
  const [before, after] = [await freePort(), await freePort()];
  const id = await create('mover', [before]);
  await host.state.waitFor((vms) => vms[0]?.boot_progress === 'done');
  await client.updateVm({ id, update_ports: true, ports: [{ protocol: 'tcp', host_port: after, vm_port: 80, host_address: '127.0.0.1' }] });
  assert.match(await probe(before), /^200 /);
  assert.equal(await probe(after), 'ECONNREFUSED');
  await client.stopVm(id);
  await client.startVm(id);
  await host.state.waitFor((vms) => vms[0]?.boot_progress === 'done');
  assert.match(await probe(after), /^200 /);
  assert.equal(await probe(before), 'ECONNREFUSED');
});

test('a host port someone else holds makes the launch fail: the VM exits', async (t) => {
  const { host, create } = await setup(t);
  const squatter = createServer();
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
  defer(t, () => new Promise<void>((resolve) => squatter.close(() => resolve())));
  const address = squatter.address();
  assert.ok(typeof address === 'object' && address !== null);
  const id = await create('clash', [address.port]);
  await host.state.waitFor((vms) => vms[0]?.status === 'exited');
  const events = host.state.get(id)?.events ?? [];
  assert.match(events.at(-1)?.body ?? '', /could not set up host forwarding rule 'tcp:127\.0\.0\.1:\d+': .*EADDRINUSE/);
});
