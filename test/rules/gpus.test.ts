// Issue 19 end to end: apps that ask for GPUs (`x-dstack.gpus`) on a simulated host with four fake
// H200s get free ones, never another app's; an app that cannot get its GPUs is pending with the
// reason, not a deploy failing in a loop, and deploys once GPUs free up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { startHarness, freePorts, waitUntil, type Harness } from '../helpers/harness.ts';
import { rescan } from '../helpers/rules.ts';
import { gpuSettingsFor, type SimGpu } from '../../src/sim/vm-gpus.ts';
import type { VmInfo } from '../../src/vmm/messages.ts';

const H200 = '10de:2335';
const FOUR: SimGpu[] = ['0000:18:00.0', '0000:2a:00.0', '0000:3a:00.0', '0000:5d:00.0'].map((address) => ({ address, productId: H200, driver: 'vfio-pci' }));

// A vLLM-like app publishing `port`, asking for `gpus` (a YAML value).
function gpuApp(port: number, gpus: string, marker = 'v1'): string {
  return [
    `# ${marker}`,
    'services:',
    '  llm:',
    '    image: vllm/vllm-openai:v0.6.6',
    `    ports: ["${port}:8000"]`,
    '    deploy: {resources: {reservations: {devices: [{driver: nvidia, count: all, capabilities: [gpu]}]}}}',
    'x-dstack:',
    `  gpus: ${gpus}`,
    '',
  ].join('\n');
}

const slotsOf = (vm: VmInfo | undefined): string[] => (vm?.configuration?.gpus?.gpus ?? []).map((g) => g.slot);
const statusOf = async (h: Harness, app: string) => (await h.statuses()).find((s) => s.app === app);

test('4 GPUs, 3 apps asking 2 each: two run on their own GPUs, the third waits with its reason, and runs once one is deleted', async (t) => {
  const h = await startHarness(t, { sim: { gpus: FOUR, settings: gpuSettingsFor(FOUR) } });
  const [pa, pb, pc] = await freePorts(3);
  await h.put('a.yaml', gpuApp(pa!, '2'));
  await h.put('b.yaml', gpuApp(pb!, '2'));
  await h.put('c.yaml', gpuApp(pc!, '2'));
  await h.start();
  const a = await h.deployed('a');
  const b = await h.deployed('b');
  assert.deepEqual(slotsOf(a), ['18:00.0', '2a:00.0']);
  assert.deepEqual(slotsOf(b), ['3a:00.0', '5d:00.0']);
  const c = await waitUntil(async () => {
    const s = await statusOf(h, 'c');
    return s?.phase === 'pending' && s.code === 'APP_GPU_UNAVAILABLE' ? s : undefined;
  }, 'c pending for GPUs');
  assert.match(c.last_error ?? '', /c\.yaml: x-dstack\.gpus asks for 2 GPUs; 0 of the 4 dstack-vmm lists are free: 0000:18:00\.0 and 0000:2a:00\.0 are held by app "a" \(.*a\.yaml\), 0000:3a:00\.0 and 0000:5d:00\.0 are held by app "b"/);
  assert.deepEqual((await statusOf(h, 'a'))?.gpus, ['0000:18:00.0', '0000:2a:00.0']);
  assert.deepEqual(c.gpus, []);

  // A resync later (and a deploy of another app), c has still not been tried: no loop.
  h.supervisor().poke();
  await h.checkpoint();
  assert.deepEqual(h.sim.faults.callLog().filter((r) => r.name === 'c').map((r) => r.method), [], 'no call for c');
  assert.equal((await statusOf(h, 'c'))?.phase, 'pending');
  assert.equal(h.logs.filter((l) => l.fields.APP === 'c' && l.fields.ACTION === 'conflict').length, 1, 'the reason is logged once');

  await rm(h.path('b.yaml'));
  const runs = await h.deployed('c');
  assert.deepEqual(slotsOf(runs), ['3a:00.0', '5d:00.0'], 'the GPUs b had');
  const running = await statusOf(h, 'c');
  assert.deepEqual([running?.phase, running?.code, running?.gpus], ['running', null, ['0000:3a:00.0', '0000:5d:00.0']]);
  assert.deepEqual(h.sim.state.list().map((v) => [v.name, slotsOf(v)]).sort(), [['a', ['18:00.0', '2a:00.0']], ['c', ['3a:00.0', '5d:00.0']], ['checkpoint-1', []]]);
  // Watched over time: with every app on its GPUs, two full resyncs change nothing (a grant that
  // compared unequal each pass would upgrade the VM again and again).
  const settled = h.mutations().length;
  await rescan(h);
  await rescan(h);
  assert.deepEqual(h.mutations().slice(settled), [], 'quiet through two resyncs');
  // A person removes c's VM with the VMM's own tools: the resync redeploys it on the GPUs it had.
  await h.supervisor().vmm.removeVm(runs.id);
  const again = await waitUntil(() => h.sim.state.list().find((v) => v.name === 'c' && v.id !== runs.id && v.status === 'running' && v.boot_progress === 'done'), 'c redeployed', 30_000);
  assert.deepEqual(slotsOf(again), ['3a:00.0', '5d:00.0'], 'the GPUs it had, now free again');
});

test('gpus: all where vmm.toml has allow_attach_all = false is refused with what to do; allowed, the app gets every GPU', async (t) => {
  const settings = gpuSettingsFor(FOUR);
  const h = await startHarness(t, { sim: { gpus: FOUR, settings: { gpu: { ...settings.gpu!, allowAttachAll: false } } } });
  const [port] = await freePorts(1);
  await h.put('big.yaml', gpuApp(port!, 'all'));
  await h.start();
  const big = await waitUntil(async () => {
    const s = await statusOf(h, 'big');
    return s?.phase === 'invalid' ? s : undefined;
  }, 'big refused');
  assert.equal(big.code, 'APP_GPU_ATTACH_ALL');
  assert.match(big.last_error ?? '', /big\.yaml: x-dstack\.gpus is "all", but dstack-vmm does not allow attaching all GPUs \(\[cvm\.gpu\] allow_attach_all = false in vmm\.toml\); ask for a number or list the GPUs/);
  await h.quiesce();
  assert.ok(!h.mutations().includes('CreateVm'), 'nothing was sent to the VMM');

  // The operator allows it (vmm.toml, VMM restart): the next resync deploys with attach_mode all.
  await h.sim.faults.restartVmm({ gpu: settings.gpu! });
  h.supervisor().poke();
  const vm = await h.deployed('big');
  assert.deepEqual([vm.configuration?.gpus?.attach_mode, slotsOf(vm)], ['all', ['18:00.0', '2a:00.0', '3a:00.0', '5d:00.0']]);
  assert.deepEqual((await statusOf(h, 'big'))?.gpus, FOUR.map((g) => g.address));
});

test('a GPU that disappears from ListGpus while its app runs changes nothing until the file changes; then the app moves to a listed GPU', async (t) => {
  const settings = gpuSettingsFor(FOUR).gpu!;
  const h = await startHarness(t, { sim: { gpus: FOUR, settings: { gpu: settings } } });
  const [port] = await freePorts(1);
  await h.put('llm.yaml', gpuApp(port!, '1'));
  await h.start();
  const before = await h.deployed('llm');
  assert.deepEqual(slotsOf(before), ['18:00.0']);

  // The operator excludes it in vmm.toml and restarts dstack-vmm: the VM boots again with it.
  await h.sim.faults.restartVmm({ gpu: { ...settings, exclude: ['18:00.0'] } });
  await h.deployed('llm');
  const mutations = h.mutations().length;
  h.supervisor().poke();
  await h.checkpoint();
  h.supervisor().poke();
  await h.quiesce();
  assert.deepEqual(h.mutations().slice(mutations), ['CreateVm'], 'only the checkpoint app was created; nothing was done to llm');
  assert.deepEqual(slotsOf(h.sim.state.get(before.id)), ['18:00.0']);
  assert.deepEqual((await statusOf(h, 'llm'))?.gpus, ['0000:18:00.0']);

  // The file changes: the upgrade gives it a GPU dstack-vmm lists, in place (same VM).
  const text = gpuApp(port!, '1', 'v2');
  await h.put('llm.yaml', text);
  const after = await h.deployed('llm', text);
  assert.equal(after.id, before.id);
  assert.deepEqual(slotsOf(after), ['2a:00.0']);
  assert.deepEqual((await statusOf(h, 'llm'))?.gpus, ['0000:2a:00.0']);
});

test('an upgrade keeps the GPUs the app has; asking for more adds free ones', async (t) => {
  const h = await startHarness(t, { sim: { gpus: FOUR, settings: gpuSettingsFor(FOUR) } });
  const [pa, pb] = await freePorts(2);
  await h.put('a.yaml', gpuApp(pa!, '1'));
  await h.start();
  await h.deployed('a');
  await h.put('b.yaml', gpuApp(pb!, '["0000:18:00.0"]'));
  // b names the GPU a holds: it waits, named; a's upgrade to 2 GPUs keeps its first and adds one.
  const b = await waitUntil(async () => {
    const s = await statusOf(h, 'b');
    return s?.phase === 'pending' && s.code === 'APP_GPU_UNAVAILABLE' ? s : undefined;
  }, 'b pending');
  assert.match(b.last_error ?? '', /0000:18:00\.0 is held by app "a"/);
  const text = gpuApp(pa!, '2', 'v2');
  await h.put('a.yaml', text);
  const a = await h.deployed('a', text);
  assert.deepEqual(slotsOf(a), ['18:00.0', '2a:00.0']);
  assert.equal((await statusOf(h, 'b'))?.phase, 'pending');
});
