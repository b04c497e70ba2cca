import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AppKeyDecision, AppKeyRequest } from '../../src/sim/vm-boot.ts';
import { statusOf } from '../../src/sim/vm-record.ts';
import { hashCompose } from '../../src/sim/vm-rules.ts';
import { queryStatus } from '../../src/sim/vmm-queries.ts';
import { DEFAULT_SIM_IMAGE } from '../../src/sim/vmm-config.ts';
import { VmmState } from '../../src/sim/vmm-state.ts';
import { ResizeVmRequestSchema, VmConfigurationSchema, StatusRequestSchema, UpdateVmRequestSchema } from '../../src/vmm/messages.ts';
import type { UpdateVmRequestInput, VmConfigurationInput } from '../../src/vmm/messages.ts';
import { createManualClock } from '../helpers/manual-clock.ts';
import { appCompose } from './fixtures.ts';

const BOOT_MS = 90;

// A VM table on a manual clock whose app-key requests are answered by `decide`.
function makeState(decide: (req: AppKeyRequest) => AppKeyDecision = () => ({ isAllowed: true, reason: '' })) {
  const clock = createManualClock();
  const keyRequests: AppKeyRequest[] = [];
  const state = new VmmState({
    clock,
    bootDelayMs: BOOT_MS,
    shutdownDelayMs: 20,
    removeDelayMs: 50,
    kmsUrls: ['https://10.0.2.2:9201'],
    requestAppKeys: async (req) => {
      keyRequests.push(req);
      return decide(req);
    },
  });
  const create = (overrides: VmConfigurationInput = {}) =>
    state.createVm(
      VmConfigurationSchema.parse({ name: 'web', image: DEFAULT_SIM_IMAGE.name, compose_file: appCompose('web'), ...overrides }),
    ).id;
  const update = (req: UpdateVmRequestInput) => state.updateVm(UpdateVmRequestSchema.parse(req));
  const vm = (id: string) => {
    const found = state.find(id);
    assert.ok(found, `VM ${id} exists`);
    return found;
  };
  return { clock, state, keyRequests, create, update, vm };
}

const port = (host_port: number, host_address = '127.0.0.1') => ({ protocol: 'tcp', host_port, vm_port: 80, host_address });

test('CreateVm boots through the guest stages to "done"; instance_id appears at "data disk ready"', async () => {
  const { clock, create, vm } = makeState();
  const id = create();
  assert.equal(statusOf(vm(id)), 'running');
  assert.equal(vm(id).bootProgress, 'booting');
  assert.equal(vm(id).instanceId, undefined);
  await clock.advance(BOOT_MS * 2);
  const progress = vm(id).events.filter((e) => e.event === 'boot.progress').map((e) => e.body);
  assert.deepEqual(progress, [
    'init-script',
    'initializing data disk',
    'requesting app keys',
    'data disk ready',
    'setting up docker',
    'pre-launch',
    'starting containers',
    'done',
  ]);
  assert.equal(vm(id).bootProgress, 'done');
  assert.match(vm(id).instanceId ?? '', /^[0-9a-f]{40}$/);
  assert.equal(vm(id).appId, hashCompose(appCompose('web')).slice(0, 40));
});

test('CreateVm with stopped=true does not boot; StartVm boots it; StartVm on a running VM is a no-op', async () => {
  const { clock, state, create, vm } = makeState();
  const id = create({ stopped: true });
  assert.equal(statusOf(vm(id)), 'stopped');
  await clock.advance(BOOT_MS * 2);
  assert.equal(vm(id).bootProgress, '');
  state.startVm(id);
  await clock.advance(BOOT_MS * 2);
  assert.equal(vm(id).bootProgress, 'done');
  const generation = vm(id).generation;
  state.startVm(id);
  assert.equal(vm(id).generation, generation);
  assert.equal(vm(id).bootProgress, 'done');
});

test('a port held by a stopped or removing VM is refused until the removal finishes', async () => {
  const { clock, state, create, vm } = makeState();
  const first = create({ name: 'blog', ports: [port(8080)] });
  state.stopVm(first);
  assert.throws(() => create({ name: 'shop', ports: [port(8080)] }), {
    code: 'SIM_VMM_REJECTED',
    message: `host port mapping conflicts with VM ${first}: tcp 127.0.0.1:8080`,
  });
  state.removeVm(first);
  assert.equal(statusOf(vm(first)), 'removing');
  state.removeVm(first);
  assert.throws(() => create({ name: 'shop', ports: [port(8080)] }), /conflicts with VM/);
  await clock.advance(50);
  assert.equal(state.find(first), undefined);
  const second = create({ name: 'shop', ports: [port(8080)] });
  assert.equal(statusOf(vm(second)), 'running');
});

test('RemoveVm of an unknown id is "VM not found"; other verbs name their step', () => {
  const { state } = makeState();
  assert.throws(() => state.removeVm('nope'), { message: 'Failed to remove VM: VM not found' });
  assert.throws(() => state.startVm('nope'), { message: 'Failed to start VM: VM not found' });
  assert.throws(() => state.stopVm('nope'), { message: 'Failed to stop VM: VM not found' });
});

test('CreateVm checks name, image and compose before recording anything', () => {
  const { state, create } = makeState();
  assert.throws(() => create({ name: 'bad/name' }), { message: 'Invalid name: bad/name' });
  assert.throws(() => create({ image: '../x' }), { message: 'Failed to load VM: Invalid image name' });
  assert.throws(() => create({ image: 'dstack-9.9.9' }), /Failed to load VM: Failed to load image/);
  assert.throws(() => create({ compose_file: '{"name":"x"}' }), /Failed to load VM: Failed to read compose file: missing field/);
  assert.equal(state.list().length, 0);
});

test('UpdateVm rewrites compose and ports without restarting; returns the NEW compose app id', async () => {
  const { clock, update, create, vm } = makeState();
  const id = create({ ports: [port(8080)], app_id: '0xABCDEF0123' });
  await clock.advance(BOOT_MS * 2);
  const generation = vm(id).generation;
  const newCompose = appCompose('web', { extra: { public_logs: true } });
  const reply = update({ id, compose_file: newCompose, update_ports: true, ports: [port(9090)] });
  assert.equal(reply.id, hashCompose(newCompose).slice(0, 40));
  assert.equal(vm(id).appId, 'abcdef0123');
  assert.equal(vm(id).generation, generation);
  assert.equal(vm(id).bootProgress, 'done');
  assert.equal(vm(id).config.compose_file, newCompose);
  assert.deepEqual(vm(id).ports.map((p) => p.host_port), [9090]);
  // QEMU's forwards were fixed at launch.
  assert.deepEqual(vm(id).launchedPorts.map((p) => p.host_port), [8080]);
  assert.equal(update({ id, user_config: '{}' }).id, '');
});

test('UpdateVm: resize needs stopped/exited, empty host_address fails, ports clash with others', async () => {
  const { state, update, create, vm } = makeState();
  const id = create({ disk_size: 20 });
  const other = create({ name: 'other', ports: [port(7070)] });
  assert.throws(() => update({ id, vcpu: 4 }), { message: `vm should be stopped before resize: ${id}` });
  assert.throws(() => update({ id, update_ports: true, ports: [port(8080, '')] }), { message: 'Invalid host address' });
  assert.throws(() => update({ id, update_ports: true, ports: [port(7070)] }), { message: `host port mapping conflicts with VM ${other}: tcp 127.0.0.1:7070` });
  assert.throws(() => update({ id, compose_file: 'nope' }), { message: /^Invalid compose file: / });
  state.stopVm(id);
  assert.throws(() => update({ id, disk_size: 10 }), { message: 'Cannot shrink disk size' });
  update({ id, vcpu: 4, memory: 4096, disk_size: 40 });
  assert.deepEqual([vm(id).config.vcpu, vm(id).config.memory, vm(id).config.disk_size], [4, 4096, 40]);
  // An unknown VM is named by the first of its files upstream's update_vm reaches.
  const missing = '0d9c5a8e-0000-4000-8000-000000000000';
  assert.throws(() => update({ id: missing, compose_file: appCompose('web') }), { message: `The instance ${missing} not found` });
  assert.throws(() => update({ id: missing, update_ports: true }), {
    message: `Failed to read manifest: failed to read manifest: failed to open file \`/var/lib/dstack/vm/${missing}/vm-manifest.json\`: No such file or directory (os error 2)`,
  });
  assert.throws(() => update({ id: missing, user_config: '{}' }), {
    message: `Failed to write user config: failed to create file \`/var/lib/dstack/vm/${missing}/shared/.user-config\`: No such file or directory (os error 2)`,
  });
  assert.throws(() => update({ id: 'no/such' }), { message: 'invalid VM id' });
});

test('ResizeVm: upstream validate_resize_request texts, then the UpdateVm resize rules', () => {
  const { state, create, vm } = makeState();
  const id = create({ disk_size: 20 });
  const resize = (req: Record<string, unknown>) => state.resizeVm(ResizeVmRequestSchema.parse({ id, ...req }));
  assert.throws(() => resize({}), { message: 'resize request contains no updates' });
  assert.throws(() => resize({ vcpu: 0 }), { message: 'vcpu must be greater than zero' });
  assert.throws(() => resize({ memory: 0 }), { message: 'memory must be greater than zero' });
  assert.throws(() => resize({ disk_size: 0 }), { message: 'disk_size must be greater than zero' });
  assert.throws(() => resize({ image: '' }), { message: 'image must not be empty' });
  assert.throws(() => resize({ vcpu: 2 }), { message: `vm should be stopped before resize: ${id}` });
  state.stopVm(id);
  assert.throws(() => resize({ disk_size: 10 }), { message: 'Cannot shrink disk size' });
  assert.throws(() => resize({ image: 'dstack-9.9.9' }), { message: /^Failed to load VM: Failed to load image/ });
  resize({ vcpu: 2, memory: 3072, disk_size: 30 });
  assert.deepEqual([vm(id).config.vcpu, vm(id).config.memory, vm(id).config.disk_size], [2, 3072, 30]);
  const missing = '0d9c5a8e-0000-4000-8000-000000000000';
  assert.throws(() => state.resizeVm({ id: missing, vcpu: 1 }), {
    message: `failed to read manifest: failed to read manifest: failed to open file \`/var/lib/dstack/vm/${missing}/vm-manifest.json\`: No such file or directory (os error 2)`,
  });
  assert.throws(() => state.resizeVm({ id: '', vcpu: 1 }), { message: 'invalid VM id' });
});

test('KMS mode: a denied app ends exited with the guest error; the webhook saw app id and hash', async () => {
  const { clock, create, vm, keyRequests } = makeState(() => ({ isAllowed: false, reason: 'app not registered' }));
  const compose = appCompose('vault', { kms: true });
  const id = create({ name: 'vault', compose_file: compose });
  await clock.advance(BOOT_MS * 3);
  assert.equal(statusOf(vm(id)), 'exited');
  assert.equal(vm(id).bootProgress, 'requesting app keys');
  assert.match(vm(id).bootError, /^Failed to request app keys: .*app not registered$/);
  assert.deepEqual(keyRequests.map((r) => [r.appId, r.composeHash, r.osImageHash]), [
    [hashCompose(compose).slice(0, 40), hashCompose(compose), DEFAULT_SIM_IMAGE.digest],
  ]);
});

test('KMS mode: an allowed app boots; the instance id survives a restart (reusable disk)', async () => {
  const { clock, state, create, vm } = makeState();
  const id = create({ name: 'vault', compose_file: appCompose('vault', { kms: true }) });
  await clock.advance(BOOT_MS * 2);
  assert.equal(vm(id).bootProgress, 'done');
  const instanceId = vm(id).instanceId;
  state.stopVm(id);
  state.startVm(id);
  await clock.advance(BOOT_MS * 2);
  assert.equal(vm(id).instanceId, instanceId);
  assert.ok(vm(id).events.some((e) => e.body === 'mounting data disk'));
});

test('KMS mode without any kms_urls fails at the key step; StartVm clears the boot error', async () => {
  const clock = createManualClock();
  const state = new VmmState({ clock, bootDelayMs: BOOT_MS, requestAppKeys: async () => ({ isAllowed: true, reason: '' }) });
  const config = { name: 'v', image: DEFAULT_SIM_IMAGE.name, compose_file: appCompose('v', { kms: true }) };
  const { id } = state.createVm(VmConfigurationSchema.parse(config));
  await clock.advance(BOOT_MS * 3);
  const vm = state.find(id);
  assert.ok(vm);
  assert.equal(vm.bootError, 'Failed to request app keys: No KMS URLs are set');
  assert.equal(statusOf(vm), 'exited');
  state.startVm(id);
  assert.equal(vm.bootError, '');
  assert.equal(vm.bootProgress, 'booting');
  state.dispose();
});

test('ShutdownVm goes running → stopping → stopped; StopVm is immediate and ends the boot', async () => {
  const { clock, state, create, vm } = makeState();
  const a = create({ name: 'a' });
  await clock.advance(BOOT_MS * 2);
  state.shutdownVm(a);
  await clock.advance(10);
  assert.equal(statusOf(vm(a)), 'stopping');
  assert.equal(vm(a).shutdownProgress, 'powering off');
  await clock.advance(10);
  assert.equal(statusOf(vm(a)), 'stopped');
  assert.throws(() => state.shutdownVm(a), { message: 'Failed to shutdown VM: VM is not running' });
  const b = create({ name: 'b' });
  await clock.advance(BOOT_MS / 3);
  state.stopVm(b);
  assert.equal(statusOf(vm(b)), 'stopped');
  const progress = vm(b).bootProgress;
  await clock.advance(BOOT_MS * 2);
  assert.equal(vm(b).bootProgress, progress);
});

test('a crash leaves the VM exited; a VMM restart reboots started VMs from "" with new kms_urls', async () => {
  const { clock, state, create, vm } = makeState();
  const running = create({ name: 'running' });
  const stopped = create({ name: 'stopped', stopped: true });
  const crashed = create({ name: 'crashed' });
  await clock.advance(BOOT_MS * 2);
  state.crashVm(crashed);
  assert.equal(statusOf(vm(crashed)), 'exited');
  state.stopAllProcesses();
  assert.deepEqual([running, crashed].map((id) => [statusOf(vm(id)), vm(id).bootProgress]), [
    ['exited', ''],
    ['exited', ''],
  ]);
  state.reloadVms({ kmsUrls: ['https://10.0.2.2:9999'] });
  assert.deepEqual(state.settings().kmsUrls, ['https://10.0.2.2:9999']);
  await clock.advance(BOOT_MS * 2);
  assert.equal(vm(running).bootProgress, 'done');
  assert.equal(vm(crashed).bootProgress, 'done');
  assert.equal(statusOf(vm(stopped)), 'stopped');
});

test('Status filters by ids and keyword, pages from 1, and brief drops configuration', () => {
  const { state, create } = makeState();
  const ids = ['alpha', 'beta', 'gamma'].map((name) => create({ name, stopped: name === 'beta' }));
  const status = (req: Record<string, unknown>) => queryStatus(state, StatusRequestSchema.parse(req));
  assert.deepEqual(status({}).vms.map((v) => v.name), ['alpha', 'beta', 'gamma']);
  assert.deepEqual(status({ ids: [ids[2]] }).vms.map((v) => v.name), ['gamma']);
  assert.deepEqual(status({ keyword: 'amm' }).vms.map((v) => v.name), ['gamma']);
  const page = status({ page: 2, page_size: 2 });
  assert.deepEqual([page.total, page.vms.map((v) => v.name)], [3, ['gamma']]);
  assert.equal(status({ brief: true }).vms[0]?.configuration, undefined);
  assert.equal(status({}).vms[0]?.configuration?.name, 'alpha');
});
