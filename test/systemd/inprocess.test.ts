import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { createSimSystemd } from '../../src/sim/systemd-inprocess.ts';
import { FakeSystemd } from '../../src/sim/systemd-model.ts';
import type { FakeUnitBehaviour } from '../../src/sim/systemd-model.ts';
import { startUnitsInOrder } from '../../src/systemd/manager.ts';
import { HOST_UNITS, recordTimeline } from './fixture.ts';
import { defer } from '../helpers/cleanup.ts';

const simulated = (t: TestContext, units: Record<string, FakeUnitBehaviour>) => {
  const model = new FakeSystemd(units);
  defer(t, () => model.shutdown());
  return { model, systemd: createSimSystemd(model, { timeoutMs: 300 }) };
};

test('in-process systemd: enable, ordered start, and a re-run that starts nothing', async (t) => {
  const { model, systemd } = simulated(t, Object.fromEntries(HOST_UNITS.map((unit, i) => [unit, { startDelayMs: 30 - i * 10 }])));
  const timeline = recordTimeline(model);
  assert.equal((await systemd.enableUnits(HOST_UNITS)).length, 3);
  assert.deepEqual(await startUnitsInOrder(systemd, HOST_UNITS), HOST_UNITS);
  assert.deepEqual(timeline, HOST_UNITS.flatMap((unit) => [`${unit}:activating`, `${unit}:active`]));
  assert.deepEqual(await startUnitsInOrder(systemd, HOST_UNITS), []);
  assert.equal(model.callsOf('StartUnit').length, 3);
});

test('in-process systemd: failures and hangs carry the same codes as over D-Bus', async (t) => {
  const { model, systemd } = simulated(t, { 'a.service': { start: 'fail' }, 'b.service': { start: 'hang' } });
  await assert.rejects(systemd.startUnit('a.service'), { code: 'SYSTEMD_UNIT_FAILED', unit: 'a.service' });
  // Nothing else keeps the event loop alive here: the timeout itself must.
  await assert.rejects(systemd.startUnit('b.service'), { code: 'SYSTEMD_TIMEOUT', unit: 'b.service' });
  await assert.rejects(systemd.startUnit('c.service'), { code: 'SYSTEMD_NO_SUCH_UNIT' });
  model.setBehaviour('a.service', {});
  await systemd.restartUnit('a.service');
  assert.equal((await systemd.unitState('a.service')).ActiveState, 'active');
});
