// Issue 15: every app status that reports an error carries its stable code beside the message, so
// a tool branches on `code`, never on wording. End to end, through the real reconcile loop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, composeText, freePorts, waitUntil } from '../helpers/harness.ts';
import { VERSION } from '../../src/version.ts';

test('issue 15: an invalid file, a port clash and a failed VMM call each give their status a code; running clears it', async (t) => {
  const h = await startHarness(t);
  const [port, other] = await freePorts(2);
  await h.put('blog.yaml', composeText(port!, 'blog'));
  await h.put('broken.yaml', 'services: [\n');
  await h.start();
  await h.deployed('blog');
  const broken = await waitUntil(async () => (await h.statuses()).find((s) => s.app === 'broken' && s.phase === 'invalid'), 'broken invalid');
  assert.equal(broken.code, 'APP_YAML');

  await h.put('shop.yaml', composeText(port!, 'shop'));
  const shop = await waitUntil(async () => (await h.statuses()).find((s) => s.app === 'shop' && s.phase === 'invalid'), 'shop refused');
  assert.equal(shop.code, 'APP_PORT_CONFLICT');

  h.sim.faults.failNext('CreateVm', { message: 'no room for another VM' });
  await h.put('shop.yaml', composeText(other!, 'shop'));
  const failed = await waitUntil(async () => (await h.statuses()).find((s) => s.app === 'shop' && s.phase === 'failed'), 'shop failed');
  assert.equal(failed.code, 'VMM_RPC');
  assert.match(failed.last_error ?? '', /no room for another VM/);
  await h.deployed('shop');
  const running = (await h.statuses()).find((s) => s.app === 'shop');
  assert.deepEqual([running?.phase, running?.code, running?.last_error], ['running', null, null]);
  assert.equal((await h.statuses()).find((s) => s.app === 'blog')?.code, null, 'an app that never failed has code null');
  assert.equal((await h.supervisorStatus())?.version, VERSION, '_supervisor.json names the version that wrote it');
});
