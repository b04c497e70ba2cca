// Issue 13 item 1: an app with NAME.env reached `running` once and was then upgraded ('changed:
// env') on every pass, its CVM restarted without end, because the env hash was recorded only when
// the operation finalized, which a pending env change never let happen. These tests watch what the
// supervisor keeps doing over time, not one instant.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, chmod, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { startHarness, composeText, freePorts, waitUntil, type Harness } from '../helpers/harness.ts';
import { rescan } from '../helpers/rules.ts';

// How long the supervisor is watched for a restart loop: 3 resyncs of the harness's R = 2 s on
// their own timer, then passes asked for one after the other (the loop upgraded on every pass).
const QUIET_WINDOW_MS = 6_000;
const FORCED_PASSES = 5;

async function putEnv(h: Harness, name: string, text: string): Promise<void> {
  const path = join(h.appsDir, `${name}.env`);
  await writeFile(path, text);
  await chmod(path, 0o600);
}

const count = (h: Harness, method: string) => h.mutations().filter((m) => m === method).length;

// Resolves after `ms` of wall time while the supervisor runs on its own, then after
// FORCED_PASSES more passes; the loop being looked for sent hundreds of calls a second, so the
// window needs no finer grain.
async function watchFor(h: Harness, ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms).unref());
  for (let i = 0; i < FORCED_PASSES; i++) await rescan(h);
}

async function runningWith(h: Harness, name: string, value: string) {
  return waitUntil(async () => {
    const vm = h.sim.state.list().find((v) => v.name === name);
    const env = vm?.configuration ? h.sim.envKeys.decrypt(vm.app_id, vm.configuration.encrypted_env) : [];
    const status = (await h.statuses()).find((s) => s.app === name);
    return vm?.status === 'running' && vm.boot_progress === 'done' && env.some((e) => e.value === value) && status?.phase === 'running' ? vm : undefined;
  }, `${name} running with ${value}`);
}

// App hello with API_KEY=abc in hello.env, running.
async function helloWithEnv(t: Parameters<typeof startHarness>[0]) {
  const h = await startHarness(t);
  const [port] = await freePorts(1);
  await putEnv(h, 'hello', 'API_KEY=abc\n');
  await h.put('hello.yaml', composeText(port!));
  await h.start();
  return { h, vm: await runningWith(h, 'hello', 'abc') };
}

test('an app with NAME.env is deployed once and then left alone for 3 resyncs and 5 more passes', { timeout: 90_000 }, async (t) => {
  const { h, vm } = await helloWithEnv(t);
  await watchFor(h, QUIET_WINDOW_MS);
  assert.deepEqual(
    { CreateVm: count(h, 'CreateVm'), UpdateVm: count(h, 'UpdateVm'), StartVm: count(h, 'StartVm'), ShutdownVm: count(h, 'ShutdownVm') },
    { CreateVm: 1, UpdateVm: 0, StartVm: 0, ShutdownVm: 0 },
    'one CreateVm and nothing after it',
  );
  assert.equal(h.sim.state.list().find((v) => v.name === 'hello')?.id, vm.id);
  assert.equal(h.decisions('hello', 'upgrade').length, 0, 'no upgrade was decided');
  assert.equal((await h.statuses()).find((s) => s.app === 'hello')?.phase, 'running');
});

test('a NAME.env value change is one UpdateVm and one restart, then quiet', { timeout: 90_000 }, async (t) => {
  const { h } = await helloWithEnv(t);
  await h.quiesce();
  const before = { UpdateVm: count(h, 'UpdateVm'), StartVm: count(h, 'StartVm'), ShutdownVm: count(h, 'ShutdownVm') };

  await putEnv(h, 'hello', 'API_KEY=xyz\n');
  await runningWith(h, 'hello', 'xyz');
  await watchFor(h, QUIET_WINDOW_MS);
  assert.deepEqual(
    { UpdateVm: count(h, 'UpdateVm') - before.UpdateVm, StartVm: count(h, 'StartVm') - before.StartVm, ShutdownVm: count(h, 'ShutdownVm') - before.ShutdownVm },
    { UpdateVm: 1, StartVm: 1, ShutdownVm: 1 },
    'exactly one upgrade for the value change',
  );
  assert.equal(count(h, 'CreateVm'), 1);
  assert.equal((await h.statuses()).find((s) => s.app === 'hello')?.phase, 'running');
});

// Found by the soak: UpdateVm takes an empty encrypted_env as "leave it", so deleting NAME.env
// left the guest its old variables, which the new manifest no longer allows ("Forbidden env
// keys"): the VM failed to boot on every retry.
test('deleting NAME.env is one upgrade to a guest with no variables, then quiet', { timeout: 90_000 }, async (t) => {
  const { h, vm } = await helloWithEnv(t);
  await h.quiesce();
  const starts = count(h, 'StartVm');

  await rm(join(h.appsDir, 'hello.env'));
  await waitUntil(async () => {
    const now = h.sim.state.list().find((v) => v.id === vm.id);
    const launched = h.sim.state.launchedEnv(vm.id);
    const status = (await h.statuses()).find((s) => s.app === 'hello');
    return now?.status === 'running' && now.boot_progress === 'done' && !now.boot_error && launched !== '' &&
      h.sim.envKeys.decrypt(vm.app_id, launched).length === 0 && status?.phase === 'running';
  }, 'hello running with no variables');
  await watchFor(h, QUIET_WINDOW_MS / 3);
  assert.equal(count(h, 'StartVm') - starts, 1, 'one restart for the deletion');
  assert.equal(h.sim.state.list().find((v) => v.name === 'hello')?.boot_error, '');
});
