import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exportFakeSystemd } from '../../src/sim/systemd.ts';
import { FakeSystemd } from '../../src/sim/systemd-model.ts';
import { startPrivateBus } from '../../src/sim/systemd-private-bus.ts';
import { Message, sessionBus } from '../../src/systemd/dbus.ts';
import { SystemdError } from '../../src/systemd/errors.ts';
import { connectSystemd } from '../../src/systemd/manager.ts';
import { makeTestDir, startFakeHost } from './fixture.ts';
import { defer } from '../helpers/cleanup.ts';

const VMM = 'dstack-vmm.service';

test('GetUnit on the wire answers org.freedesktop.systemd1.NoSuchUnit for an unloaded unit', async (t) => {
  const { bus, systemd } = await startFakeHost(t, { [VMM]: {} });
  const client = sessionBus({ busAddress: bus.address });
  defer(t, () => client.disconnect());
  const getUnit = () =>
    client.call(new Message({ destination: 'org.freedesktop.systemd1', path: '/org/freedesktop/systemd1', interface: 'org.freedesktop.systemd1.Manager', member: 'GetUnit', signature: 's', body: [VMM] }));

  await assert.rejects(getUnit(), { name: 'DBusError', type: 'org.freedesktop.systemd1.NoSuchUnit' });
  await systemd.startUnit(VMM);
  const reply = await getUnit();
  assert.deepEqual(reply?.body, ['/org/freedesktop/systemd1/unit/dstack_2dvmm_2eservice']);
});

test('a second fake systemd on the same bus is refused', async (t) => {
  const { bus } = await startFakeHost(t, {});
  const second = new FakeSystemd({});
  await assert.rejects(exportFakeSystemd(second, bus.address), { code: 'SIM_SYSTEMD_EXPORT' });
});

test('connectSystemd honours DBUS_SYSTEM_BUS_ADDRESS when no address is given', async (t) => {
  const { bus, model } = await startFakeHost(t, { [VMM]: {} });
  const saved = process.env['DBUS_SYSTEM_BUS_ADDRESS'];
  process.env['DBUS_SYSTEM_BUS_ADDRESS'] = bus.address;
  defer(t, () => {
    if (saved === undefined) delete process.env['DBUS_SYSTEM_BUS_ADDRESS'];
    else process.env['DBUS_SYSTEM_BUS_ADDRESS'] = saved;
  });
  const systemd = await connectSystemd({ timeoutMs: 5_000 });
  defer(t, () => systemd.close());
  await systemd.startUnit(VMM);
  assert.equal(model.callsOf('StartUnit').length, 1);
});

test('a stopped private bus is gone: connecting then fails with SYSTEMD_BUS', async (t) => {
  const dir = await makeTestDir(t);
  const bus = await startPrivateBus(dir);
  assert.match(bus.address, /^unix:path=.*bus\.sock/);
  await bus.stop();
  await assert.rejects(connectSystemd({ address: bus.address }), (err) => {
    assert.ok(err instanceof SystemdError);
    assert.equal(err.code, 'SYSTEMD_BUS');
    assert.match(err.message, /cannot connect/);
    return true;
  });
});

test('systemd missing from the bus is SYSTEMD_BUS, naming the unit being started', async (t) => {
  const { service, systemd } = await startFakeHost(t, { [VMM]: {} });
  await service.stop();
  await assert.rejects(systemd.startUnit(VMM), (err) => {
    assert.ok(err instanceof SystemdError);
    assert.equal(err.code, 'SYSTEMD_BUS');
    assert.equal(err.unit, VMM);
    assert.match(err.message, /org\.freedesktop\.DBus\.Error\.ServiceUnknown/);
    return true;
  });
});

test('a bus that went away fails the next call with SYSTEMD_BUS instead of hanging', async (t) => {
  const { bus, systemd } = await startFakeHost(t, { [VMM]: {} });
  await bus.stop();
  await assert.rejects(systemd.unitState(VMM), { code: 'SYSTEMD_BUS', unit: VMM });
});
