// Issue 16: releases before it wrote `"allowed_envs": []` into the manifest of an app without env
// names; upstream omits the key, and so do we now. The bytes, so the compose hash, of such an app
// changed with the package, not its content: the VM a previous release deployed is up to date as it
// runs (README "Decisions", upgrading the package), and goes to the new form with its next real change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, composeText, composeOf, freePorts } from '../helpers/harness.ts';
import { rescan } from '../helpers/rules.ts';
import { createVmLikeUpstream } from '../helpers/upstream-vm.ts';
import { manifestOf, sha256 } from '../soak/manifest.ts';
import { openStateStore } from '../../src/state/store.ts';

// The manifest a release before issue 16 built: today's, with `"allowed_envs": []` last.
const earlierManifestOf = (name: string, text: string) => JSON.stringify({ ...JSON.parse(manifestOf(name, text, [])), allowed_envs: [] }, null, 2);

test('issue 16: a package upgrade restarts no app deployed before it; its next content change upgrades it in place to the new form', async (t) => {
  const h = await startHarness(t);
  const [port] = await freePorts(1);
  const v1 = composeText(port!, 'v1');
  // What the previous release left behind: its VM (CreateVm with the app id of its manifest), the
  // allowlist entry, and its state record of the app, settled.
  const made = await createVmLikeUpstream(t, h, 'shop', earlierManifestOf('shop', v1), port!);
  const store = await openStateStore(h.config.state_dir);
  await store.save({ name: 'shop', file: h.path('shop.yaml'), appId: made.appId, vmId: made.id, phase: 'running', appliedHash: made.hash, registeredHashes: [made.hash] });
  await h.put('shop.yaml', v1);
  const mark = h.mutations().length;

  await h.start();
  await h.deployed('shop', v1);
  assert.notEqual(made.hash, sha256(manifestOf('shop', v1, [])), 'the two forms differ');
  assert.deepEqual(h.mutations().slice(mark), [], 'no UpdateVm, no restart');
  // Watched over time: the old form stays up to date through two full resyncs.
  await rescan(h);
  await rescan(h);
  assert.deepEqual(h.mutations().slice(mark), [], 'still no UpdateVm or restart after two resyncs');
  assert.deepEqual(h.decisions('shop').filter((l) => l.priority <= 6).map((l) => l.fields.msg), [], 'nothing to tell the operator');
  assert.equal((await h.statuses()).find((s) => s.app === 'shop')?.compose_hash, made.hash);
  assert.deepEqual(await h.allowlist(), { [made.appId]: { composeHashes: [made.hash], devices: [], allowAnyDevice: true } }, 'the new form is not registered');
  assert.deepEqual(await store.load('shop'), { name: 'shop', file: h.path('shop.yaml'), appId: made.appId, vmId: made.id, phase: 'running', appliedHash: made.hash, registeredHashes: [made.hash] });

  const v2 = composeText(port!, 'v2');
  await h.put('shop.yaml', v2);
  const vm = await h.deployed('shop', v2);
  assert.equal(vm.id, made.id, 'upgraded in place');
  assert.equal(vm.app_id, made.appId, 'the app id, so the keys, stay');
  assert.equal(vm.configuration?.compose_file, manifestOf('shop', v2, []), 'the new form');
  assert.equal(composeOf(vm), v2);
  assert.deepEqual(h.mutations().slice(mark), ['UpdateVm', 'ShutdownVm', 'StartVm'], 'one upgrade');
  await rescan(h);
  await rescan(h);
  assert.deepEqual(h.mutations().slice(mark), ['UpdateVm', 'ShutdownVm', 'StartVm'], 'and then quiet through two resyncs');
  assert.deepEqual((await h.allowlist())[made.appId]?.composeHashes, [sha256(manifestOf('shop', v2, []))]);
});
