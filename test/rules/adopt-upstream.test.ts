// Issue 16 item 3: an app moved from upstream's `dstack deploy` into apps.d keeps its VM. The same
// compose file and name give the same manifest, so the same app id: the supervisor finds the VM by
// name and app id and takes it over as it runs, rather than deploying a second VM with new keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, composeText, freePorts } from '../helpers/harness.ts';
import { rescan } from '../helpers/rules.ts';
import { createVmLikeUpstream } from '../helpers/upstream-vm.ts';
import { manifestOf } from '../soak/manifest.ts';

// The harness's simulated VMM loads this as its `[cvm] kms_urls`, as init renders vmm.toml.
const KMS_URL = 'https://10.0.2.2:12001';

test('issue 16: a VM dstack deploy made from the same file and name is taken over: zero mutating calls, one journal line', async (t) => {
  // `[apps] kms_urls` as init sets it; the VM dstack deploy made has none of its own, and boots with
  // the VMM's, the same (docs/dstack.md §2.1), so that is no change either.
  const h = await startHarness(t, { apps: { kms_urls: [KMS_URL] } });
  const [port] = await freePorts(1);
  const text = composeText(port!, 'moved from dstack deploy');
  // The manifest as upstream builds it, written independently of src/ (test/soak/manifest.ts).
  const made = await createVmLikeUpstream(t, h, 'shop', manifestOf('shop', text, []), port!);
  const mark = h.mutations().length;

  await h.put('shop.yaml', text);
  await h.start();
  const vm = await h.deployed('shop', text);

  assert.equal(vm.id, made.id, 'the VM dstack deploy made is the app\'s now');
  assert.deepEqual(h.sim.state.list().filter((v) => v.name === 'shop').map((v) => v.id), [made.id], 'no second VM, none torn down');
  assert.deepEqual(h.mutations().slice(mark), [], `no CreateVm, UpdateVm, restart or removal: ${h.decisions('shop').map((l) => l.fields.msg).join('; ')}`);
  const status = (await h.statuses()).find((s) => s.app === 'shop');
  assert.equal(status?.app_id, made.appId);
  assert.equal(status?.compose_hash, made.hash);
  assert.deepEqual((await h.allowlist())[made.appId]?.composeHashes, [made.hash]);
  // Watched over time: two full resyncs later, still no mutating call and the same VM.
  await rescan(h);
  await rescan(h);
  assert.deepEqual(h.mutations().slice(mark), [], 'quiet through two resyncs');
  assert.deepEqual(h.sim.state.list().filter((v) => v.name === 'shop').map((v) => [v.id, v.status]), [[made.id, 'running']]);
  // The decisions an operator's journal shows (info and above); beside them only the status
  // lines of the phases (new -> pending -> running) of an app the supervisor now manages.
  const lines = h.decisions('shop').filter((l) => l.priority <= 6);
  assert.equal(lines.length, 1, lines.map((l) => l.fields.msg).join('\n'));
  assert.match(String(lines[0]?.fields.REASON), new RegExp(`^VM ${made.id} \\(app id ${made.appId}\\) is named by no record of ours \\(made by \`dstack deploy\` .*\\): taken over as it runs, nothing changed$`));
});
