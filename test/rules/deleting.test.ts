// Issue 15: while a delete is being confirmed the app is `deleting`, with the time left in its
// status and in the journal; a file back in time returns it to `running` without touching its VM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { formatStatusTable } from '../../src/status/table.ts';
import { waitUntil } from '../helpers/harness.ts';
import { rescan, startWithApp, statusOf } from '../helpers/rules.ts';

test('issue 15: a deleted file is `deleting` with delete_at until confirmed; back in time, it is `running` again and its VM untouched', { timeout: 60_000 }, async (t) => {
  const { h, vm, text } = await startWithApp(t, { apps: { delete_confirm_s: 4 } }, 'm1');
  const mark = h.mutations().length;
  const removedAt = Date.now();
  await rm(h.path('m1.yml'));
  const deleting = await statusOf(h, 'm1', 'deleting');
  assert.equal(deleting.vm_id, vm.id);
  const due = Date.parse(deleting.delete_at ?? '');
  assert.ok(due >= removedAt + 4_000 - 50 && due <= Date.now() + 4_000 + 50, `delete_at ${deleting.delete_at} is 4 s after the delete was seen`);
  const line = h.logs.find((l) => l.fields.APP === 'm1' && l.fields.PHASE === 'deleting');
  assert.match(String(line?.fields.msg), /^m1: running -> deleting \(.*m1\.yml is gone; torn down in [34] s unless it comes back\)$/);
  assert.match(formatStatusTable([deleting], due - 2_500), /\bdeleting \(3 s\)/, 'the table counts down');
  // _supervisor.json is written after the app's own status file: wait for it, not one read.
  await waitUntil(async () => JSON.parse(await readFile(join(h.config.state_dir, 'status', '_supervisor.json'), 'utf8')).counts.deleting === 1, '_supervisor.json counting 1 deleting');

  await h.put('m1.yml', text);
  const back = await statusOf(h, 'm1', 'running');
  assert.equal(back.delete_at, null);
  await rescan(h);
  await rescan(h);
  assert.deepEqual(h.mutations().slice(mark), [], 'no VMM call changed anything, through two resyncs');
  assert.equal((await statusOf(h, 'm1', 'running')).delete_at, null);
  assert.equal(h.sim.state.get(vm.id)?.status, 'running');

  await rm(h.path('m1.yml'));
  await statusOf(h, 'm1', 'deleting');
  await h.until((vms) => !vms.some((v) => v.id === vm.id), 'm1 torn down once confirmed');
  await waitUntil(async () => !(await h.statuses()).some((s) => s.app === 'm1'), 'm1 status removed');
});
