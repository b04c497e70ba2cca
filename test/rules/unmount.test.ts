// docs/apps-dir.md rule 12 with a real mount: a file system mounted over (or unmounted from) apps.d shows
// another, usually empty, directory. That is a fault, never "delete every app". Needs root, as CI
// runs; mount(8) is util-linux.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { startHarness, composeText, freePorts, waitUntil } from '../helpers/harness.ts';
import { defer } from '../helpers/cleanup.ts';

test('rule 12: apps.d on another file system (a mount came or went) tears nothing down until it is back', async (t) => {
  const h = await startHarness(t, { apps: { resync_s: 0.5, delete_confirm_s: 0.2 } });
  const [p1, p2] = await freePorts(2);
  await h.put('x.yaml', composeText(p1!));
  await h.start();
  await h.until((vms) => vms.some((v) => v.name === 'x' && v.boot_progress === 'done'), 'x running');
  await execa('mount', ['-t', 'tmpfs', '-o', 'mode=0755', 'tmpfs', h.appsDir]);
  let mounted = true;
  defer(t, async () => {
    if (mounted) await execa('umount', [h.appsDir]);
  });
  h.supervisor().poke();
  await waitUntil(() => h.logs.find((l) => l.priority === 3 && String(l.fields.msg).includes('another file system')), 'fault logged');
  // Three resyncs later (each well past the delete confirmation) the app still runs.
  const resyncs = h.logs.length;
  await waitUntil(() => h.logs.length >= resyncs && h.sim.faults.calls().filter((c) => c === 'Status').length > 6, 'several resyncs');
  assert.equal(h.sim.state.list().length, 1);
  assert.ok(!h.mutations().includes('RemoveVm'));
  await execa('umount', [h.appsDir]);
  mounted = false;
  await h.put('y.yaml', composeText(p2!));
  await h.until((vms) => vms.some((v) => v.name === 'y' && v.boot_progress === 'done'), 'back on its file system: work goes on');
  assert.ok(h.sim.state.list().some((v) => v.name === 'x'));
});
