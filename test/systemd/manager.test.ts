import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SystemdError } from '../../src/systemd/errors.ts';
import { startUnitsInOrder } from '../../src/systemd/manager.ts';
import { HOST_UNITS, recordTimeline, startFakeHost } from './fixture.ts';

const [AUTH, KEY_PROVIDER, VMM] = HOST_UNITS as [string, string, string];

test('units start in the requested order, each only after the previous is active', async (t) => {
  // Slowest first: started concurrently, the VMM would be up before auth-simple.
  const { model, systemd } = await startFakeHost(t, {
    [AUTH]: { startDelayMs: 80 },
    [KEY_PROVIDER]: { startDelayMs: 40 },
    [VMM]: {},
  });
  const timeline = recordTimeline(model);
  const started = await startUnitsInOrder(systemd, HOST_UNITS);
  assert.deepEqual(started, HOST_UNITS);
  assert.deepEqual(timeline, HOST_UNITS.flatMap((unit) => [`${unit}:activating`, `${unit}:active`]));
  assert.deepEqual(model.callsOf('StartUnit').map((call) => call.args), HOST_UNITS.map((unit) => [unit, 'replace']));
  assert.equal(model.callsOf('Subscribe').length, 1, 'one Subscribe per connection');
});

test('startUnit waits for the job and resolves with the unit active', async (t) => {
  const { model, systemd } = await startFakeHost(t, { [VMM]: { startDelayMs: 150 } });
  const timeline = recordTimeline(model);
  await systemd.startUnit(VMM);
  assert.deepEqual(timeline, [`${VMM}:activating`, `${VMM}:active`]);
  assert.deepEqual(await systemd.unitState(VMM), { ActiveState: 'active', SubState: 'running', LoadState: 'loaded' });
});

test('a unit that fails to start is reported by name, with its state and last journal lines', async (t) => {
  const { systemd } = await startFakeHost(t, {
    [AUTH]: {},
    [VMM]: { start: 'fail', startDelayMs: 20, failureLog: ['dstack-vmm: cannot open /dev/kvm'] },
  });
  await assert.rejects(startUnitsInOrder(systemd, [AUTH, VMM]), (err) => {
    assert.ok(err instanceof SystemdError);
    assert.equal(err.code, 'SYSTEMD_UNIT_FAILED');
    assert.equal(err.unit, VMM);
    assert.deepEqual(err.state, { ActiveState: 'failed', SubState: 'failed', LoadState: 'loaded' });
    assert.ok(err.journal.includes('dstack-vmm: cannot open /dev/kvm'));
    assert.match(err.message, /starting dstack-vmm\.service: the job ended with result "failed"; unit is failed/);
    assert.match(err.message, /cannot open \/dev\/kvm/);
    return true;
  });
  assert.equal((await systemd.unitState(AUTH)).ActiveState, 'active', 'units before the failure stay up');
});

test('a unit that hangs in activating times out with SYSTEMD_TIMEOUT', async (t) => {
  const { systemd } = await startFakeHost(t, { [KEY_PROVIDER]: { start: 'hang' } }, 300);
  const started = Date.now();
  await assert.rejects(systemd.startUnit(KEY_PROVIDER), (err) => {
    assert.ok(err instanceof SystemdError);
    assert.equal(err.code, 'SYSTEMD_TIMEOUT');
    assert.equal(err.unit, KEY_PROVIDER);
    assert.equal(err.state?.ActiveState, 'activating');
    assert.match(err.message, /not active after 300 ms/);
    return true;
  });
  assert.ok(Date.now() - started < 3_000, 'gives up near its timeout');
});

test('an unknown unit maps to SYSTEMD_NO_SUCH_UNIT for start and for enable', async (t) => {
  const { systemd } = await startFakeHost(t, { [VMM]: {} });
  await assert.rejects(systemd.startUnit('nope.service'), (err) => {
    assert.ok(err instanceof SystemdError);
    assert.equal(err.code, 'SYSTEMD_NO_SUCH_UNIT');
    assert.equal(err.unit, 'nope.service');
    assert.equal(err.state?.LoadState, 'not-found');
    assert.match(err.message, /starting nope\.service: org\.freedesktop\.systemd1\.NoSuchUnit \("Unit nope\.service not found\."\)/);
    return true;
  });
  await assert.rejects(systemd.enableUnits([VMM, 'nope.service']), { code: 'SYSTEMD_NO_SUCH_UNIT' });
  assert.deepEqual(await systemd.unitState('nope.service'), { ActiveState: 'inactive', SubState: 'dead', LoadState: 'not-found' });
});

test('enableUnits calls EnableUnitFiles and Reload, and a second run changes nothing', async (t) => {
  const { model, systemd } = await startFakeHost(t, Object.fromEntries(HOST_UNITS.map((unit) => [unit, {}])));
  const changes = await systemd.enableUnits(HOST_UNITS);
  assert.equal(changes.length, 3);
  assert.deepEqual(changes[2], ['symlink', `/etc/systemd/system/multi-user.target.wants/${VMM}`, `/lib/systemd/system/${VMM}`]);
  assert.deepEqual(model.callsOf('EnableUnitFiles').map((call) => call.args), [[HOST_UNITS, false, false]]);
  assert.equal(model.callsOf('Reload').length, 1);

  assert.deepEqual(await systemd.enableUnits(HOST_UNITS), []);
  assert.equal(model.callsOf('Reload').length, 1, 'nothing linked, nothing to reload');
});

test('a re-run with every unit active starts nothing', async (t) => {
  const { model, systemd } = await startFakeHost(t, Object.fromEntries(HOST_UNITS.map((unit) => [unit, {}])));
  await startUnitsInOrder(systemd, HOST_UNITS);
  const startsBefore = model.callsOf('StartUnit').length;
  assert.deepEqual(await startUnitsInOrder(systemd, HOST_UNITS), []);
  assert.equal(model.callsOf('StartUnit').length, startsBefore);
});

test('stop waits for inactive and restart for active; a stopped unit still reads via LoadUnit', async (t) => {
  const { model, systemd } = await startFakeHost(t, { [VMM]: { startDelayMs: 30 } });
  await systemd.startUnit(VMM);
  await systemd.stopUnit(VMM);
  // Garbage-collected like in real systemd: GetUnit fails, LoadUnit (used by unitState) works.
  assert.throws(() => model.getUnit(VMM), { type: 'org.freedesktop.systemd1.NoSuchUnit' });
  assert.equal((await systemd.unitState(VMM)).ActiveState, 'inactive');
  await systemd.restartUnit(VMM);
  assert.equal((await systemd.unitState(VMM)).ActiveState, 'active');
  assert.deepEqual(model.calls.filter((c) => c.method.endsWith('Unit') && c.method !== 'LoadUnit' && c.method !== 'GetUnit').map((c) => c.method), ['StartUnit', 'StopUnit', 'RestartUnit']);
});
