// Issue 8 end to end: a file with only warnings deploys and shows them; a refused file never
// reaches the VMM, and the app of the same name that already runs keeps running.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, composeText, freePorts, waitUntil } from '../helpers/harness.ts';

test('a file with only warnings deploys, and its warnings are in status and the journal once', async (t) => {
  const h = await startHarness(t);
  const [port] = await freePorts(1);
  await h.put('blog.yaml', `services:\n  web:\n    image: nginx\n    ports: ["${port}:80"]\n    volumes: ["./html:/usr/share/nginx/html"]\n`);
  await h.start();
  const status = await waitUntil(async () => (await h.statuses()).find((s) => s.app === 'blog' && s.phase === 'running'), 'blog running');
  assert.equal(status.warnings.length, 1);
  assert.match(status.warnings[0]!, /service web: volumes: .*\.\/html/);
  h.supervisor().poke();
  await h.quiesce();
  const warned = h.logs.filter((l) => l.priority === 4 && String(l.fields.msg).includes('./html'));
  assert.equal(warned.length, 1, 'logged once per content hash');
});

test('a refused file never reaches the VMM and the running app of that name keeps running', async (t) => {
  const h = await startHarness(t);
  const [port] = await freePorts(1);
  await h.put('api.yaml', composeText(port!));
  await h.start();
  const [vm] = await h.until((vms) => vms.some((v) => v.name === 'api' && v.boot_progress === 'done'), 'api running');
  const before = h.mutations().length;
  await h.put('api.yaml', `services:\n  api:\n    build: ./api\n    ports: ["${port}:80"]\n`);
  const invalid = await waitUntil(async () => (await h.statuses()).find((s) => s.app === 'api' && s.phase === 'invalid'), 'api invalid');
  assert.match(invalid.last_error ?? '', /build/);
  await h.quiesce();
  assert.equal(h.mutations().length, before, 'no RPC changed anything');
  const now = h.sim.state.list();
  assert.equal(now.length, 1);
  assert.equal(now[0]!.id, vm!.id);
  assert.equal(now[0]!.status, 'running');
});

// Issue 14: today no gateway serves unless gateway.d says so. A file asking for it deploys on its
// direct ports (gateway_enabled false, which a guest boots with) and says why, instead of a guest
// told to register with a gateway that is not there (a failed boot, retried for good).
test('x-dstack gateway: true with no gateway configured deploys on direct ports with a warning', async (t) => {
  const h = await startHarness(t);
  const [port] = await freePorts(1);
  await h.put('shop.yaml', `${composeText(port!)}x-dstack:\n  gateway: true\n`);
  await h.start();
  const status = await waitUntil(async () => (await h.statuses()).find((s) => s.app === 'shop' && s.phase === 'running'), 'shop running');
  const vm = h.sim.state.list().find((v) => v.name === 'shop')!;
  assert.equal(JSON.parse(vm.configuration!.compose_file).gateway_enabled, false);
  assert.equal(vm.boot_error, '');
  assert.deepEqual(vm.configuration!.ports.map((p) => p.host_port), [port]);
  assert.ok(status.warnings.some((w) => /^x-dstack\.gateway: no gateway is configured/.test(w)), JSON.stringify(status.warnings));
});
