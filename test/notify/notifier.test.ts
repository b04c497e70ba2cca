import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { createLogger } from '../../src/log/logger.ts';
import { createNotifier, NOTIFY_FAILED } from '../../src/notify/notifier.ts';
import { collectLines } from '../log/collect.ts';
import { startReceiver, type Receiver } from './receiver.ts';
import { defer } from '../helpers/cleanup.ts';

async function socketPath(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'notify-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  return join(dir, 'notify.sock');
}

async function receiverAt(t: TestContext, address: string): Promise<Receiver> {
  const receiver = await startReceiver(address);
  defer(t, () => receiver.close());
  return receiver;
}

function quietLog() {
  const { stream, lines } = collectLines();
  return { log: createLogger({ level: 'debug', stream }), lines };
}

test('rule 21: READY=1 and the first STATUS= arrive in one datagram on a real socket', async (t) => {
  const address = await socketPath(t);
  const receiver = await receiverAt(t, address);
  const { log, lines } = quietLog();
  const notifier = createNotifier({ env: { NOTIFY_SOCKET: address }, log });
  assert.equal(notifier.enabled, true);
  await notifier.ready('running 3, pending 1, invalid 0, failed 0');
  assert.deepEqual(await receiver.next(), ['READY=1', 'STATUS=running 3, pending 1, invalid 0, failed 0']);
  await notifier.stopping('stopping: finishing 1 operation');
  assert.deepEqual(await receiver.next(), ['STOPPING=1', 'STATUS=stopping: finishing 1 operation']);
  await notifier.watchdog();
  assert.deepEqual(await receiver.next(), ['WATCHDOG=1']);
  assert.deepEqual(lines, []);
});

test('the abstract namespace form (@name) is passed through to systemd-notify', async (t) => {
  const address = `@dstack-supervisor-test-${randomUUID()}`;
  const receiver = await receiverAt(t, address);
  const notifier = createNotifier({ env: { NOTIFY_SOCKET: address }, log: quietLog().log });
  await notifier.status('hello');
  assert.deepEqual(await receiver.next(), ['STATUS=hello']);
});

test('status updates coalesce: one in flight, the latest pending one wins', async (t) => {
  const address = await socketPath(t);
  const receiver = await receiverAt(t, address);
  const notifier = createNotifier({ env: { NOTIFY_SOCKET: address }, log: quietLog().log });
  const sent = [notifier.status('first'), notifier.status('second'), notifier.status('third')];
  await Promise.all(sent);
  await notifier.status('end');
  const seen: string[][] = [];
  while (seen.at(-1)?.[0] !== 'STATUS=end') seen.push(await receiver.next());
  assert.deepEqual(seen, [['STATUS=first'], ['STATUS=third'], ['STATUS=end']]);
});

test('a multi-line status is sent as one line', async (t) => {
  const address = await socketPath(t);
  const receiver = await receiverAt(t, address);
  const notifier = createNotifier({ env: { NOTIFY_SOCKET: address }, log: quietLog().log });
  await notifier.status('running 1\n  last error: boom');
  assert.deepEqual(await receiver.next(), ['STATUS=running 1 last error: boom']);
});

test('without NOTIFY_SOCKET nothing is spawned and nothing is logged', async () => {
  const { log, lines } = quietLog();
  // A helper that cannot be spawned: any attempt would log NOTIFY_FAILED.
  const notifier = createNotifier({ env: {}, log, command: '/nonexistent/systemd-notify' });
  assert.equal(notifier.enabled, false);
  await notifier.ready('running 0');
  await notifier.status('running 0');
  await notifier.watchdog();
  assert.deepEqual(lines, []);
});

test('a notification nobody receives is logged with its code and never thrown', async (t) => {
  const address = await socketPath(t);
  const { log, lines } = quietLog();
  const notifier = createNotifier({ env: { NOTIFY_SOCKET: address }, log });
  await notifier.ready('running 0');
  await notifier.status('running 1');
  assert.deepEqual(
    lines.map((l) => [l.priority, (l.fields.err as { code?: string }).code]),
    [
      [3, NOTIFY_FAILED],
      [4, NOTIFY_FAILED],
    ],
  );
  assert.match(String(lines[0]!.fields.msg), /No such file or directory.*notify\.sock/);
});
