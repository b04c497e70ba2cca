// A teardown cut short (StopVm failed) leaves its intent in the record and the VM running. When the
// file comes back while held (here: its NAME.env has a bad mode), the delete is called off: the VM
// is the app's again and is kept sound like any held app's. Before, the open teardown intent made
// every pass leave the app alone: the VM, once crashed, was never started again and its allowlist
// entry never repaired (soak seeds 11202, 11303: `allowlist-missing` on a held app).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startWithApp, statusOf } from '../helpers/rules.ts';
import { waitUntil } from '../helpers/harness.ts';

test('a held file that returns after a teardown failed calls the teardown off: its crashed VM is started again', { timeout: 60_000 }, async (t) => {
  const { h, vm, text } = await startWithApp(t, {}, 'shop');
  const recordPath = join(h.config.state_dir, 'apps', 'shop.json');
  const intentOf = async () => (JSON.parse(await readFile(recordPath, 'utf8')) as { intent?: { op: string } }).intent?.op;

  h.sim.faults.failNext('StopVm', { count: 1000 });
  await rm(join(h.appsDir, 'shop.yml'));
  await waitUntil(async () => (await intentOf()) === 'teardown' && h.decisions('shop', 'teardown').some((d) => d.priority <= 3), 'the teardown failing at StopVm');

  const envPath = join(h.appsDir, 'shop.env');
  await writeFile(envPath, 'TOKEN=x\n');
  await chmod(envPath, 0o644);
  await h.put('shop.yml', text);
  await statusOf(h, 'shop', 'invalid');
  h.sim.faults.reset();

  // The crash lands on a VM whose teardown was called off: it is kept, not removed.
  h.sim.faults.crashVm(vm.id);
  await h.until((vms) => vms.some((v) => v.id === vm.id && v.status === 'running' && v.boot_progress === 'done' && !v.boot_error), 'shop started again', 20_000);
  assert.equal(await intentOf(), undefined, 'the teardown intent is closed');
  assert.equal(h.sim.state.list().length, 1, 'the VM was kept, not replaced');
  const apps = await h.allowlist();
  assert.ok(apps[vm.app_id]?.composeHashes.length === 1, 'its allowlist entry lists the hash it runs');
});
