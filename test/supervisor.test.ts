// Issue 18 end to end: a pass for a file event looks at the files the watcher named, not at the
// other apps' files, NAME.env or state records, nor does it list apps.d; what the watcher missed
// (a change, a new file), a resync finds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { watchDir } from '../watchers/apps.ts';
import { startHarness, composeText, composeOf, freePorts, waitUntil } from './helpers/harness.ts';

test('issue 18: changes the watcher missed (new file, file, NAME.env, state record) wait for the resync, not for the next event', async (t) => {
  // Events for quiet's files never reach the supervisor: a change to them is one inotify lost.
  const muted = new Set(['quiet.yml', 'quiet.env']);
  const h = await startHarness(t, {
    apps: { resync_s: 3600 },
    watchDir: (dir, onEvent) => watchDir(dir, (name) => (name !== null && muted.has(name) ? undefined : onEvent(name))),
  });
  const [port] = await freePorts(1);
  await h.start();
  // The pass for the watcher arming (a full one) is over: only event passes run from here.
  await h.supervisor().idle();
  const v1 = composeText(port as number, 'quiet v1');
  await h.put('quiet.yml', v1);
  // A file created with no event is not listed by an event pass either: the resync finds it.
  await h.checkpoint();
  assert.equal(h.sim.state.list().some((v) => v.name === 'quiet'), false, 'the event pass for another file did not list apps.d');
  h.supervisor().poke();
  const vm = await h.deployed('quiet', v1);
  const quietVm = () => h.sim.state.list().find((v) => v.id === vm.id);
  const updates = () => h.mutations().filter((m) => m === 'UpdateVm').length;

  const v2 = composeText(port as number, 'quiet v2');
  await h.put('quiet.yml', v2);
  const env = join(h.appsDir, 'quiet.env');
  await writeFile(env, 'TOKEN=1\n');
  await chmod(env, 0o600);
  await h.checkpoint();
  assert.equal(composeOf(quietVm()!), v1, 'an event pass for another file did not look at quiet.yml or quiet.env');
  assert.equal(updates(), 0);

  // The resync (a reload) finds both: one upgrade to v2 with the env.
  h.supervisor().poke();
  await h.deployed('quiet', v2);
  const upgraded = quietVm()!;
  assert.deepEqual(h.sim.envKeys.decrypt(upgraded.app_id, upgraded.configuration!.encrypted_env), [{ key: 'TOKEN', value: '1' }]);

  // A record made unreadable by hand: the next event pass answers from memory, the resync reads it.
  await writeFile(join(h.config.state_dir, 'apps', 'quiet.json'), 'garbage');
  await h.checkpoint();
  assert.equal((await h.statuses()).find((s) => s.app === 'quiet')?.phase, 'running');
  h.supervisor().poke();
  await waitUntil(async () => (await h.statuses()).find((s) => s.app === 'quiet' && s.phase === 'failed' && s.code === 'STATE_CORRUPT'), 'quiet held for its record');
});

// Issue 18: a resync now reads outside its pass and hands what differs to it as hints. Watched
// over time: once an app runs, resync after resync must change nothing — no VMM call that
// changes a VM, no allowlist write — and a file event meanwhile is still acted on.
test('issue 18: after an app runs, resyncs read everything again and stay quiet', { timeout: 60_000 }, async (t) => {
  const h = await startHarness(t);
  const [p, q] = await freePorts(2);
  await h.put('shop.yaml', composeText(p as number, 'shop'));
  await h.start();
  await h.deployed('shop');
  await h.quiesce();
  const mutations = h.mutations().length;
  const allowlist = await h.allowlist();
  const passes = h.decisions('shop', 'noop').length;
  await waitUntil(() => h.decisions('shop', 'noop').length >= passes + 3, 'three resyncs');
  assert.equal(h.mutations().length, mutations, 'no VMM change across three resyncs');
  assert.deepEqual(await h.allowlist(), allowlist, 'the allowlist as it was');
  // A drop between resyncs still goes through, once.
  await h.put('blog.yaml', composeText(q as number, 'blog'));
  await h.deployed('blog');
  await h.quiesce();
  assert.deepEqual(h.mutations().slice(mutations), ['CreateVm'], 'blog created once, shop untouched');
});
