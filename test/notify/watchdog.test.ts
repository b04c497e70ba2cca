import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../src/log/logger.ts';
import { createNotifier } from '../../src/notify/notifier.ts';
import { startWatchdog, watchdogIntervalMs } from '../../src/notify/watchdog.ts';
import { collectLines } from '../log/collect.ts';
import { startReceiver } from './receiver.ts';
import { createManualClock } from '../helpers/manual-clock.ts';
import { defer } from '../helpers/cleanup.ts';

test('the interval is half of WATCHDOG_USEC, and only for our own PID', () => {
  const table: Array<[Record<string, string>, number | null]> = [
    [{}, null],
    [{ WATCHDOG_USEC: '30000000' }, 15_000],
    [{ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '4242' }, 15_000],
    [{ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '1' }, null],
    [{ WATCHDOG_USEC: '0' }, null],
    [{ WATCHDOG_USEC: 'soon' }, null],
  ];
  for (const [env, expected] of table) assert.equal(watchdogIntervalMs(env, 4242), expected, JSON.stringify(env));
});

test('WATCHDOG=1 reaches a real socket at every tick of the injected timer, until stopped', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'watchdog-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  const address = join(dir, 'notify.sock');
  const receiver = await startReceiver(address);
  defer(t, () => receiver.close());
  const env = { NOTIFY_SOCKET: address, WATCHDOG_USEC: '2000000', WATCHDOG_PID: String(process.pid) };
  const real = createNotifier({ env, log: createLogger({ level: 'debug', stream: collectLines().stream }) });
  let pings = 0;
  const notifier = { enabled: real.enabled, watchdog: () => (pings++, real.watchdog()) };
  const clock = createManualClock();
  const stop = startWatchdog({ notifier, env, pid: process.pid, clock });
  await clock.advance(999);
  assert.equal(pings, 0);
  await clock.advance(1);
  assert.equal(pings, 1);
  assert.deepEqual(await receiver.next(), ['WATCHDOG=1']);
  await clock.advance(1_000);
  assert.equal(pings, 2);
  assert.deepEqual(await receiver.next(), ['WATCHDOG=1']);
  stop();
  assert.equal(clock.pending(), 0);
});

test('no pings are scheduled when the watchdog is off, for another PID, or without NOTIFY_SOCKET', () => {
  const log = createLogger({ level: 'debug', stream: collectLines().stream });
  const cases = [
    { NOTIFY_SOCKET: '/run/x', WATCHDOG_PID: '1' },
    { NOTIFY_SOCKET: '/run/x', WATCHDOG_USEC: '2000000', WATCHDOG_PID: '1' },
    { WATCHDOG_USEC: '2000000' },
  ];
  for (const env of cases) {
    const clock = createManualClock();
    startWatchdog({ notifier: createNotifier({ env, log }), env, pid: process.pid, clock });
    assert.equal(clock.pending(), 0, JSON.stringify(env));
  }
});
