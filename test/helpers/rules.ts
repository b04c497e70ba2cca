// Steps the docs/apps-dir.md rule tests share: an app to start from, the "nothing happened" check, and
// waits on a status or on one more full scan.
import assert from 'node:assert/strict';
import type { AppStatus } from '../../src/status/schema.ts';
import type { VmInfo } from '../../src/vmm/messages.ts';
import { startHarness, composeText, composeOf, freePort, waitUntil, type Harness, type HarnessOptions } from './harness.ts';

// A started harness with app `name` (default x) deployed from NAME.yml; resolves with its VM, port
// and text.
export async function startWithApp(t: Parameters<typeof startHarness>[0], options: HarnessOptions = {}, name = 'x') {
  const h = await startHarness(t, options);
  await h.start();
  const port = await freePort();
  const text = composeText(port, 'v1');
  await h.put(`${name}.yml`, text);
  const vm = await h.deployed(name, text);
  return { h, vm, port, text };
}

// After a checkpoint, assert that `vm`'s app still runs `text` on it and that, since `mark` (a
// length of h.mutations()), the only mutating call was the checkpoint's CreateVm.
export async function assertUntouched(h: Harness, mark: number, vm: VmInfo, text: string): Promise<void> {
  await h.checkpoint();
  assert.deepEqual(h.mutations().slice(mark), ['CreateVm'], 'no operation besides the checkpoint deploy');
  const now = h.sim.state.get(vm.id);
  assert.equal(now?.name, vm.name, `${vm.name} keeps its VM`);
  assert.equal(now?.status, 'running');
  assert.equal(composeOf(now), text, `${vm.name} still runs the content it ran before`);
}

// The status of `app` once it reports `phase`.
export function statusOf(h: Harness, app: string, phase: AppStatus['phase']): Promise<AppStatus> {
  return waitUntil(async () => (await h.statuses()).find((s) => s.app === app && s.phase === phase), `${app} ${phase}`);
}

// Poke the supervisor and wait until that scan, and everything it queued, is done.
export async function rescan(h: Harness): Promise<void> {
  h.supervisor().poke();
  await h.quiesce();
}
