// Issue 19: the simulated host's fake GPUs behave as dstack-vmm's (312dc605): ListGpus filters by
// `[cvm.gpu]` and marks what a running VM holds; CreateVm and UpdateVm check only what
// `resolve_gpus_with_config` checks, in its words; an unknown or busy slot fails the launch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gpuSettingsFor, listSimGpus, lspciSlot, resolveSimGpus, type SimGpu, type SimGpuSettings } from '../../src/sim/vm-gpus.ts';
import { DEFAULT_SIM_IMAGE } from '../../src/sim/vmm-config.ts';
import { queryGpus } from '../../src/sim/vmm-queries.ts';
import { renderVmInfo, statusOf } from '../../src/sim/vm-record.ts';
import { VmmState } from '../../src/sim/vmm-state.ts';
import { UpdateVmRequestSchema, VmConfigurationSchema, type VmConfigurationInput } from '../../src/vmm/messages.ts';
import { createManualClock } from '../helpers/manual-clock.ts';
import { appCompose } from './fixtures.ts';

const H100 = '10de:2330';
const H200 = '10de:2335';
const HOST: SimGpu[] = [
  { address: '0000:18:00.0', productId: H200, driver: 'vfio-pci' },
  { address: '0000:2a:00.0', productId: H200, driver: 'vfio-pci' },
  { address: '0000:3a:00.0', productId: H100, driver: 'vfio-pci' },
  { address: '0000:5d:00.0', productId: H200, driver: 'nvidia' },
];
const ON: SimGpuSettings = { enabled: true, listing: [H200], include: [], exclude: [], allowAttachAll: true };

function makeState(gpu: SimGpuSettings = ON, host: SimGpu[] = HOST) {
  const clock = createManualClock();
  const state = new VmmState({ clock, bootDelayMs: 60, gpus: host, settings: { gpu }, requestAppKeys: async () => ({ isAllowed: true, reason: '' }) });
  const create = (name: string, over: VmConfigurationInput = {}) =>
    state.createVm(VmConfigurationSchema.parse({ name, image: DEFAULT_SIM_IMAGE.name, compose_file: appCompose(name), ...over })).id;
  return { clock, state, create };
}

test('ListGpus: the listed product ids minus exclude (lspci slots), only include when set; a host-driver GPU is never free', () => {
  assert.deepEqual(listSimGpus(HOST, { ...ON, enabled: false }, new Set()), [], 'off: nothing, as upstream');
  assert.deepEqual(
    listSimGpus(HOST, ON, new Set(['0000:2a:00.0'])).map((g) => [g.slot, g.product_id, g.is_free]),
    [['18:00.0', H200, true], ['2a:00.0', H200, false], ['5d:00.0', H200, false]],
  );
  assert.equal(listSimGpus(HOST, ON, new Set())[0]?.description, 'NVIDIA Corporation GH100 [H200 SXM 141GB]');
  assert.deepEqual(listSimGpus(HOST, { ...ON, listing: [H200, H100], exclude: ['5d:00.0'], include: ['18:00.0', '3a:00.0', '5d:00.0'] }, new Set()).map((g) => g.slot), ['18:00.0', '3a:00.0']);
  // A second PCI domain (Intel VMD) makes lspci, and so the VMM, print every domain.
  assert.equal(lspciSlot('0000:18:00.0', [...HOST, { address: '10000:01:00.0', productId: H200, driver: 'vfio-pci' }]), '0000:18:00.0');
});

test('a B200 host: init renders its product id into listing, and ListGpus describes it as lspci does ("GB100 [B200]")', () => {
  const b200: SimGpu[] = [{ address: '0000:18:00.0', productId: '10de:2901', driver: 'vfio-pci' }];
  const settings = gpuSettingsFor(b200).gpu;
  assert.deepEqual(settings?.listing, ['10de:2901']);
  assert.deepEqual(
    listSimGpus(b200, settings!, new Set()).map((g) => [g.slot, g.product_id, g.description]),
    [['18:00.0', '10de:2901', 'NVIDIA Corporation GB100 [B200]']],
  );
});

test("CreateVm/UpdateVm GPU checks are upstream's resolve_gpus_with_config, in its words", () => {
  assert.throws(() => resolveSimGpus({ attach_mode: 'listed', gpus: [{ slot: '18:00.0' }] }, HOST, { ...ON, enabled: false }), { message: 'GPU is not enabled' });
  assert.throws(() => resolveSimGpus({ attach_mode: 'all', gpus: [] }, HOST, { ...ON, enabled: false }), { message: 'GPU is not enabled' });
  assert.deepEqual(resolveSimGpus({ attach_mode: 'listed', gpus: [] }, HOST, { ...ON, enabled: false }), { config: { attach_mode: 'listed', gpus: [] }, bridges: [] });
  assert.throws(() => resolveSimGpus({ attach_mode: '', gpus: [] }, HOST, ON), { message: 'Invalid GPU attach mode: ' });
  assert.throws(() => resolveSimGpus({ attach_mode: 'all', gpus: [] }, HOST, { ...ON, allowAttachAll: false }), { message: 'Attaching all GPUs is not allowed' });
  // No check of the slots themselves: the VMM leaves that to QEMU at launch.
  assert.deepEqual(resolveSimGpus({ attach_mode: 'listed', gpus: [{ slot: '99:00.0' }] }, HOST, ON), { config: { attach_mode: 'listed', gpus: [{ slot: '99:00.0' }] }, bridges: [] });
  assert.deepEqual(resolveSimGpus({ attach_mode: 'all', gpus: [] }, HOST, ON).config.gpus.map((g) => g.slot), ['18:00.0', '2a:00.0', '3a:00.0', '5d:00.0'], 'every NVIDIA GPU, listed or not');
  assert.deepEqual(resolveSimGpus(undefined, HOST, ON), { config: { attach_mode: 'listed', gpus: [] }, bridges: [] }, 'CreateVm without gpus stores the default');
});

test('a launch with an unknown slot, a slot another running VM holds or one on a host driver exits with QEMU\'s error', async () => {
  const { state, create, clock } = makeState();
  const first = create('first', { gpus: { attach_mode: 'listed', gpus: [{ slot: '18:00.0' }] } });
  assert.deepEqual(state.find(first)?.launchedGpus, ['0000:18:00.0']);
  assert.deepEqual(queryGpus(state).gpus.map((g) => [g.slot, g.is_free]), [['18:00.0', false], ['2a:00.0', true], ['5d:00.0', false]]);
  for (const [name, slot, tail] of [
    ['busy', '18:00.0', 'vfio 0000:18:00.0: Device or resource busy'],
    ['unknown', '99:00.0', 'vfio 0000:99:00.0: no such host device: No such file or directory'],
    ['host', '5d:00.0', 'vfio 0000:5d:00.0: the device is bound to nvidia, not vfio-pci'],
  ] as const) {
    const id = create(name, { gpus: { attach_mode: 'listed', gpus: [{ slot }] } });
    const vm = state.find(id)!;
    assert.equal(statusOf(vm), 'exited', name);
    assert.equal(vm.events.at(-1)?.body, `qemu-system-x86_64: -device vfio-pci,host=${slot},bus=pci.1,iommufd=iommufd0: ${tail}`);
  }
  // Once the first VM stops, its GPU is free and a VM with it starts.
  state.stopVm(first);
  const again = create('again', { gpus: { attach_mode: 'listed', gpus: [{ slot: '18:00.0' }] } });
  await clock.advance(200);
  assert.equal(state.find(again)?.bootProgress, 'done');
  // UpdateVm stores the new GPUs (resolved); without the field it keeps them.
  state.updateVm(UpdateVmRequestSchema.parse({ id: again, gpus: { attach_mode: 'listed', gpus: [{ slot: '2a:00.0' }] } }));
  state.updateVm(UpdateVmRequestSchema.parse({ id: again, compose_file: appCompose('again') }));
  assert.deepEqual(state.find(again)?.config.gpus, { attach_mode: 'listed', gpus: [{ slot: '2a:00.0' }] });
});

test('with [cvm.gpu] enabled = false a VM created with GPUs launches without them (try_allocate_gpus)', () => {
  const { state, create } = makeState();
  const id = create('web', { gpus: { attach_mode: 'listed', gpus: [{ slot: '18:00.0' }] } });
  state.stopVm(id);
  state.reloadVms({ gpu: { ...ON, enabled: false } });
  state.startVm(id);
  assert.deepEqual([statusOf(state.find(id)!), state.find(id)?.launchedGpus], ['running', []]);
});

test('a host without init gets [cvm.gpu] as init renders it: the vfio-pci product ids, the others excluded', () => {
  assert.deepEqual(gpuSettingsFor(HOST), { gpu: { enabled: true, listing: [H100, H200], include: [], exclude: ['5d:00.0'], allowAttachAll: false } });
  assert.deepEqual(gpuSettingsFor([]), {});
});

// An HGX board's part: two H200s and two NVSwitches (10de:22a3, class 0x0680), all on vfio-pci
// unless `switchDriver` says otherwise for the second NVSwitch.
const hgx = (switchDriver = 'vfio-pci'): SimGpu[] => [
  { address: '0000:05:00.0', productId: '10de:22a3', driver: 'vfio-pci', kind: 'nvswitch' },
  { address: '0000:06:00.0', productId: '10de:22a3', driver: switchDriver, kind: 'nvswitch' },
  { address: '0000:18:00.0', productId: H200, driver: 'vfio-pci' },
  { address: '0000:2a:00.0', productId: H200, driver: 'vfio-pci' },
];

test('"all" is every NVIDIA GPU and every NVSwitch, as upstream\'s resolve_gpus; VmInfo shows the GPUs only (vmm_rpc.proto\'s GpuConfig has no bridges)', async () => {
  assert.deepEqual(resolveSimGpus({ attach_mode: 'all', gpus: [] }, hgx(), ON), {
    config: { attach_mode: 'all', gpus: [{ slot: '18:00.0' }, { slot: '2a:00.0' }] },
    bridges: ['05:00.0', '06:00.0'],
  });
  const { state, create } = makeState(ON, hgx());
  const id = create('ppcie', { gpus: { attach_mode: 'all', gpus: [] } });
  const vm = state.find(id)!;
  assert.equal(statusOf(vm), 'running');
  assert.deepEqual(vm.launchedGpus, ['0000:18:00.0', '0000:2a:00.0', '0000:05:00.0', '0000:06:00.0'], 'QEMU opens the GPUs, then the NVSwitches');
  assert.deepEqual(renderVmInfo(vm, 0, false, '').configuration?.gpus, { attach_mode: 'all', gpus: [{ slot: '18:00.0' }, { slot: '2a:00.0' }] });
  // UpdateVm with other GPUs replaces the NVSwitches too: the next launch has none.
  state.updateVm(UpdateVmRequestSchema.parse({ id, gpus: { attach_mode: 'listed', gpus: [{ slot: '18:00.0' }] } }));
  state.stopVm(id);
  state.startVm(id);
  assert.deepEqual(state.find(id)?.launchedGpus, ['0000:18:00.0']);
});

test('an "all" launch fails, in QEMU\'s words, on an NVSwitch the host\'s nvidia-nvswitch holds and on one another VM holds', () => {
  const { state, create } = makeState(ON, hgx('nvidia-nvswitch'));
  const id = create('ppcie', { gpus: { attach_mode: 'all', gpus: [] } });
  assert.equal(statusOf(state.find(id)!), 'exited');
  // pci.1 and pci.2 are the GPUs, pci.3 the first NVSwitch.
  assert.equal(state.find(id)?.events.at(-1)?.body, 'qemu-system-x86_64: -device vfio-pci,host=06:00.0,bus=pci.4,iommufd=iommufd0: vfio 0000:06:00.0: the device is bound to nvidia-nvswitch, not vfio-pci');
  assert.deepEqual(state.find(id)?.launchedGpus, []);

  const busy = makeState(ON, hgx());
  busy.create('switch', { gpus: { attach_mode: 'listed', gpus: [{ slot: '05:00.0' }] } });
  const all = busy.create('ppcie', { gpus: { attach_mode: 'all', gpus: [] } });
  assert.equal(busy.state.find(all)?.events.at(-1)?.body, 'qemu-system-x86_64: -device vfio-pci,host=05:00.0,bus=pci.3,iommufd=iommufd0: vfio 0000:05:00.0: Device or resource busy');
});

test('"all" on a host with NVSwitches and no GPU opens nothing (configure_gpus returns early without a GPU)', () => {
  const { state, create } = makeState(ON, hgx('nvidia-nvswitch').filter((g) => g.kind === 'nvswitch'));
  const id = create('ppcie', { gpus: { attach_mode: 'all', gpus: [] } });
  assert.deepEqual([statusOf(state.find(id)!), state.find(id)?.launchedGpus], ['running', []]);
});

test('a simulated host without init gets [cvm.gpu] as init renders it for NVSwitches: never in listing, "all" only when they are on vfio-pci', () => {
  assert.deepEqual(gpuSettingsFor(hgx()), { gpu: { enabled: true, listing: [H200], include: [], exclude: [], allowAttachAll: true } });
  assert.deepEqual(gpuSettingsFor(hgx('nvidia-nvswitch')), { gpu: { enabled: true, listing: [H200], include: [], exclude: [], allowAttachAll: false } });
});
