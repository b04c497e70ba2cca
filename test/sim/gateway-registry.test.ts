import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HostPort } from '../../src/sim/vm-rules.ts';
import { admin, startTestGateway } from './gateway-fixtures.ts';

type Status = { id: number; url: string; hosts: { instance_id: string; app_id: string; ip: string; base_domain: string; latest_handshake: number; num_connections: number }[]; nodes: unknown[]; uuid: string };

const APP = 'a'.repeat(40);
const OTHER_APP = 'b'.repeat(40);
const port = (vm_port: number, host_port: number): HostPort => ({ protocol: 'tcp', host_address: '127.0.0.1', host_port, vm_port });

test('registered instances appear in Status.hosts with app id, instance id, address and the best base domain', async (t) => {
  const { gw } = await startTestGateway(t);
  const first = await gw.register({ appId: APP, instanceId: 'i1', ports: [port(80, 18080)] });
  assert.deepEqual(first, { clientIp: '10.8.0.2', domain: '', externalPort: 0 });

  await admin(gw, 'AddZtDomain', { domain: 'low.example.com', port: 443, priority: 1 });
  await admin(gw, 'AddZtDomain', { domain: 'high.example.com', port: 9204, priority: 100 });
  const second = await gw.register({ appId: OTHER_APP, instanceId: 'i2', ports: [] });
  assert.deepEqual(second, { clientIp: '10.8.0.3', domain: 'high.example.com', externalPort: 9204 });

  const status = await admin<Status>(gw, 'Status');
  assert.equal(status.id, 1);
  assert.equal(status.url, gw.rpcUrl);
  assert.match(status.uuid, /^[0-9a-f]{32}$/);
  assert.equal(status.nodes.length, 1);
  assert.deepEqual(
    status.hosts.map(({ instance_id, app_id, ip, base_domain, num_connections }) => ({ instance_id, app_id, ip, base_domain, num_connections })),
    [
      { instance_id: 'i1', app_id: APP, ip: '10.8.0.2', base_domain: 'high.example.com', num_connections: 0 },
      { instance_id: 'i2', app_id: OTHER_APP, ip: '10.8.0.3', base_domain: 'high.example.com', num_connections: 0 },
    ],
  );
  assert.ok(status.hosts.every((h) => h.latest_handshake > 0));
});

test('a re-registering instance keeps its address; an instance id taken by another app and an empty id are refused', async (t) => {
  const { gw } = await startTestGateway(t);
  await gw.register({ appId: APP, instanceId: 'i1', ports: [port(80, 18080)] });
  const again = await gw.register({ appId: APP, instanceId: 'i1', ports: [port(80, 18081)] });
  assert.equal(again.clientIp, '10.8.0.2');
  assert.equal(gw.store.instances.get('i1')?.ports[0]?.host_port, 18081);

  await assert.rejects(gw.register({ appId: OTHER_APP, instanceId: 'i1', ports: [] }), {
    code: 'SIM_GATEWAY_REJECTED',
    message: 'failed to allocate IP address for client: instance_id is already registered to a different app',
  });
  // no_instance_id = true leaves the guest without an instance id.
  await assert.rejects(gw.register({ appId: APP, instanceId: '', ports: [] }), { message: '[] instance id is empty' });
  assert.equal((await admin<Status>(gw, 'Status')).hosts.length, 1);
});

test('an unregistered instance leaves Status, and its address is handed out again', async (t) => {
  const { gw } = await startTestGateway(t);
  await gw.register({ appId: APP, instanceId: 'i1', ports: [] });
  await gw.register({ appId: APP, instanceId: 'i2', ports: [] });
  assert.equal(gw.unregister('i1'), true);
  assert.equal(gw.unregister('i1'), false);
  assert.deepEqual((await admin<Status>(gw, 'Status')).hosts.map((h) => h.instance_id), ['i2']);
  assert.equal((await gw.register({ appId: APP, instanceId: 'i3', ports: [] })).clientIp, '10.8.0.2');
});

test('registration fails on an injected fault and once the gateway is closed; a restart on the same store keeps the instances', async (t) => {
  const { gw } = await startTestGateway(t);
  gw.faults.failNext('RegisterCvm', { message: 'handshake failed' });
  await assert.rejects(gw.register({ appId: APP, instanceId: 'i1', ports: [] }), { message: 'handshake failed' });
  await gw.register({ appId: APP, instanceId: 'i1', ports: [] });
  await gw.close();
  await assert.rejects(gw.register({ appId: APP, instanceId: 'i2', ports: [] }), /connection refused/);

  const { gw: restarted } = await startTestGateway(t, { store: gw.store });
  assert.deepEqual((await admin<Status>(restarted, 'Status')).hosts.map((h) => h.instance_id), ['i1']);
});
