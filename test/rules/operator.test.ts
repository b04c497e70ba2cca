// docs/apps-dir.md rules 21 and 22: what the operator sees — READY=1 and STATUS= through a real datagram
// socket, status files, and one journal line per decision at a priority that matches.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHarness, composeText, freePorts, waitUntil } from '../helpers/harness.ts';
import { startReceiver } from '../notify/receiver.ts';
import { defer } from '../helpers/cleanup.ts';

test('rule 21: READY=1 comes after the first scan and plan, with STATUS= counts; status files exist by then', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'notify-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  const socket = join(dir, 'notify.sock');
  const receiver = await startReceiver(socket);
  defer(t, () => receiver.close());
  const h = await startHarness(t, { env: { NOTIFY_SOCKET: socket } });
  const [port] = await freePorts(1);
  await h.put('web.yaml', composeText(port!));
  await h.put('bad.yaml', 'services: [not, a, mapping\n');
  const started = h.start();
  const first = await receiver.next(15_000);
  await started;
  assert.ok(first.includes('READY=1'), `first datagram: ${first.join(' ')}`);
  const status = first.find((a) => a.startsWith('STATUS='));
  assert.match(status ?? '', /^STATUS=running \d+, pending \d+, invalid \d+, failed \d+/);
  const apps = (await h.statuses()).map((s) => s.app).sort();
  assert.deepEqual(apps, ['bad', 'web'], 'every app has a status file at READY');
  for (;;) {
    const next = await receiver.next(15_000);
    if (next.includes('STATUS=running 1, pending 0, invalid 1, failed 0')) break;
  }
});

test('rule 22: one line per decision with APP, FILE, ACTION, TO, REASON; problems at warning or worse; repeats summarised', async (t) => {
  const h = await startHarness(t, { apps: { backoff_initial_s: 0.2, backoff_max_s: 0.2 } });
  const [port] = await freePorts(1);
  await h.put('web.yaml', composeText(port!));
  await h.put('bad.yaml', 'services: [not, a, mapping\n');
  await h.start();
  await waitUntil(() => h.logs.find((l) => l.fields.ACTION === 'deploy' && l.fields.APP === 'web'), 'deploy line');
  const deploy = h.logs.find((l) => l.fields.ACTION === 'deploy' && l.fields.APP === 'web')!;
  assert.equal(deploy.priority, 6);
  assert.match(String(deploy.fields.FILE), /web\.yaml$/);
  assert.match(String(deploy.fields.TO), /^[0-9a-f]{12}$/);
  assert.equal(typeof deploy.fields.REASON, 'string');
  const invalid = h.logs.filter((l) => l.fields.ACTION === 'invalid' && l.fields.APP === 'bad');
  assert.equal(invalid.length, 1);
  assert.equal(invalid[0]!.priority, 4);
  assert.ok(h.logs.filter((l) => l.priority <= 4).every((l) => l.fields.APP !== 'web' || l.fields.ACTION !== 'deploy'), 'a healthy deploy is not a warning');

  h.sim.faults.failNext('CreateVm', { count: 1000, message: 'injected failure' });
  const [p2] = await freePorts(1);
  await h.put('api.yaml', composeText(p2!));
  await waitUntil(() => h.sim.faults.calls().filter((c) => c === 'CreateVm').length >= 8, 'eight failed attempts', 20_000);
  const errors = h.logs.filter((l) => l.fields.APP === 'api' && l.priority === 3);
  assert.ok(errors.length >= 1 && errors.length < 8, `${errors.length} error lines for 8 identical failures`);
  assert.ok(errors.some((l) => l.fields.REPEATED !== undefined && l.fields.NEXT_RETRY !== undefined), `a summary with count and next retry: ${JSON.stringify(errors.map((e) => e.fields))}`);
});
