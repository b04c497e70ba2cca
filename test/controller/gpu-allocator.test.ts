// Issue 19: the pass's GPU step: what it asks the VMM, what it remembers between passes, and how
// its outcomes become verdicts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createGpuAllocator } from '../../src/controller/gpu-allocator.ts';
import type { AppVerdict, ManagedApp } from '../../src/controller/desired.ts';
import type { DesiredSpec } from '../../src/controller/spec.ts';
import { VmInfoSchema, type GpuInfo, type ListGpusResponse, type VmInfo } from '../../src/vmm/messages.ts';

const gpu = (slot: string, isFree = true): GpuInfo => ({ slot, product_id: '10de:2335', description: '', is_free: isFree });
const manifest = (name: string) => `{"name":"${name}"}`;
const hash = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

function app(name: string, gpus: DesiredSpec['gpus']): AppVerdict<DesiredSpec> {
  const spec = { name, file: `apps.d/${name}.yaml`, manifest: manifest(name), composeHash: hash(manifest(name)), gpus } as DesiredSpec;
  return { kind: 'app', spec, fileHash: `file-${name}` };
}

function vm(id: string, name: string, slots: string[]): VmInfo {
  return VmInfoSchema.parse({ id, name, status: 'running', app_id: hash(manifest(name)).slice(0, 40), configuration: { name, compose_file: manifest(name), gpus: { attach_mode: 'listed', gpus: slots.map((slot) => ({ slot })) } } });
}

function setUp(reply: () => ListGpusResponse, vms: VmInfo[] = []) {
  const asked: number[] = [];
  const allocator = createGpuAllocator({
    listGpus: async () => {
      asked.push(1);
      return reply();
    },
    vms: () => vms,
  });
  const managed = new Map<string, ManagedApp>();
  const pass = async (verdicts: [string, AppVerdict<DesiredSpec>][]) => {
    const map = new Map(verdicts);
    await allocator.claim(map, managed);
    return map;
  };
  return { asked, pass, managed, vms };
}

const grantOf = (v: AppVerdict<DesiredSpec> | undefined) => (v?.kind === 'app' ? v.spec.gpuGrant : undefined);

test('an app whose VM runs its file with its GPUs costs no ListGpus call; a host with no GPU app none at all', async () => {
  const { asked, pass, managed } = setUp(() => assert.fail('ListGpus was asked'), [vm('vm-a', 'a', ['18:00.0'])]);
  managed.set('a', { file: 'apps.d/a.yaml', running: true, ports: [], vmId: 'vm-a' });
  const out = await pass([['a', app('a', 1)]]);
  assert.deepEqual(grantOf(out.get('a')), { mode: 'listed', slots: ['18:00.0'] });
  await pass([['web', app('web', undefined)]]);
  assert.equal(asked.length, 0);
});

test('a grant is remembered until the VM shows it: the next pass does not give it to an app earlier by name', async () => {
  let free = true;
  const { pass } = setUp(() => ({ gpus: [gpu('18:00.0', free)], allow_attach_all: true }));
  const first = await pass([['m', app('m', 1)]]);
  assert.deepEqual(grantOf(first.get('m')), { mode: 'listed', slots: ['18:00.0'] });
  // m's CreateVm launched its QEMU (not free now), the VM list does not show it yet; a new app "a" comes.
  free = false;
  const second = await pass([['a', app('a', 1)], ['m', app('m', 1)]]);
  assert.deepEqual(grantOf(second.get('m')), { mode: 'listed', slots: ['18:00.0'] });
  const a = second.get('a');
  assert.deepEqual([a?.kind, a?.kind === 'hold' && a.why, a?.kind === 'hold' && a.code], ['hold', 'gpu', 'APP_GPU_UNAVAILABLE']);
  assert.match(a?.kind === 'hold' ? a.reason : '', /0000:18:00\.0 is held by app "m"/);
});

test('the VM of an app whose file is held keeps its GPUs; so do the VMs of an app whose record cannot be read', async () => {
  const { pass, managed } = setUp(() => ({ gpus: [gpu('18:00.0'), gpu('2a:00.0')], allow_attach_all: true }), [vm('vm-old', 'old', ['18:00.0']), vm('vm-lost', 'lost', ['2a:00.0'])]);
  managed.set('old', { file: 'apps.d/old.yaml', running: true, ports: [], vmId: 'vm-old' });
  managed.set('lost', { file: 'apps.d/lost.yaml', running: false, ports: [], unreadable: { code: 'STATE_CORRUPT', message: 'bad record' } });
  const out = await pass([['new', app('new', ['0000:18:00.0', '0000:2a:00.0'])]]);
  const v = out.get('new');
  assert.match(v?.kind === 'hold' ? v.reason : '', /0000:18:00\.0 is held by app "old" \(apps\.d\/old\.yaml\); 0000:2a:00\.0 is held by app "lost" \(apps\.d\/lost\.yaml\)/);
});

test('ListGpus failing holds new apps with the reason; "all" refused by the VMM is invalid, not pending', async () => {
  const failing = setUp(() => {
    throw new Error('dstack-vmm is down');
  });
  const down = (await failing.pass([['a', app('a', 1)]])).get('a');
  assert.match(down?.kind === 'hold' ? down.reason : '', /the host's GPUs cannot be listed \(ListGpus: dstack-vmm is down\)/);
  const refusing = setUp(() => ({ gpus: [gpu('18:00.0')], allow_attach_all: false }));
  const all = (await refusing.pass([['a', app('a', 'all')]])).get('a');
  assert.deepEqual([all?.kind, all?.kind === 'hold' && all.why, all?.kind === 'hold' && all.code, all?.kind === 'hold' && all.fileHash], ['hold', 'invalid', 'APP_GPU_ATTACH_ALL', 'file-a']);
});
