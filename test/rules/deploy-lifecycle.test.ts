// The lifecycle of docs/design.md end to end on the simulated host: new file → deploy, changed
// content → upgrade in place, deleted file → teardown; with the allowlist following each step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { startHarness, composeText, freePorts, waitUntil } from '../helpers/harness.ts';

const running = (name: string) => (vms: { name: string; status: string; boot_progress: string }[]) =>
  vms.some((v) => v.name === name && v.status === 'running' && v.boot_progress === 'done');

test('a dropped file deploys, an edit upgrades in place, a delete tears down', async (t) => {
  const h = await startHarness(t);
  await h.start();
  const [p1, p2] = await freePorts(2);
  await h.put('shop.yaml', composeText(p1!));
  const [vm] = (await h.until(running('shop'), 'shop running')).filter((v) => v.name === 'shop');
  await waitUntil(async () => (await h.statuses()).find((s) => s.app === 'shop' && s.phase === 'running'), 'status running');
  const first = (await h.statuses())[0]!;
  assert.deepEqual(first.urls, [`http://127.0.0.1:${p1}`]);
  assert.equal(first.vm_id, vm!.id);
  assert.equal(createHash('sha256').update(vm!.configuration!.compose_file).digest('hex'), first.compose_hash);
  assert.deepEqual((await h.allowlist())[first.app_id!]?.composeHashes, [first.compose_hash]);

  await h.put('shop.yaml', composeText(p2!, 'v2'));
  await waitUntil(async () => (await h.statuses()).find((s) => s.phase === 'running' && s.compose_hash !== first.compose_hash), 'upgrade');
  const vms = h.sim.state.list();
  assert.equal(vms.length, 1, 'upgrade keeps one VM');
  assert.equal(vms[0]!.id, vm!.id, 'same VM');
  assert.equal(vms[0]!.app_id, first.app_id, 'same app id, so the keys survive');
  assert.deepEqual(vms[0]!.configuration!.ports.map((p) => p.host_port), [p2]);
  const second = (await h.statuses())[0]!;
  assert.deepEqual((await h.allowlist())[first.app_id!]?.composeHashes, [second.compose_hash], 'old hash pruned after the new one runs');

  await rm(join(h.appsDir, 'shop.yaml'));
  await h.until((v) => v.length === 0, 'VM removed');
  await waitUntil(async () => (await h.allowlist())[first.app_id!] === undefined, 'allowlist entry removed');
  await waitUntil(async () => (await h.statuses()).length === 0, 'status file removed');
  const phases = h.logs.filter((l) => l.fields.APP === 'shop' && l.fields.PHASE !== undefined).map((l) => l.fields.msg);
  assert.match(String(phases.at(-3)), /^shop: running -> deleting \(.*shop\.yaml is gone; torn down in \d+ s unless it comes back\)$/, 'the journal says a delete is being confirmed');
  assert.deepEqual(phases.slice(-2), ['shop: deleting -> removing', 'shop: removing -> removed'], 'the journal says when the teardown is over');
});
