// Issue 19: which app gets which of the host's GPUs, decided across apps in one place.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GPU_UNAVAILABLE, grantSatisfies, resolveGpuClaims, sameGrant, type GpuClaimant, type GpuInventory, type GpuOutcome } from '../../src/controller/gpu-claims.ts';
import type { GpuInfo } from '../../src/vmm/messages.ts';

const H200 = '10de:2335';
const SLOTS = ['18:00.0', '2a:00.0', '3a:00.0', '5d:00.0'];
const gpu = (slot: string, isFree = true): GpuInfo => ({ slot, product_id: H200, description: 'NVIDIA Corporation GH100 [H200 SXM 141GB]', is_free: isFree });
const inventory = (over: Partial<GpuInventory> = {}): GpuInventory => ({
  listed: { gpus: SLOTS.map((s) => gpu(s)), allowAttachAll: true },
  held: new Map(),
  foreign: new Map(),
  ...over,
});
const claimant = (name: string, request: GpuClaimant['request'], over: Partial<GpuClaimant> = {}): GpuClaimant => ({ name, file: `apps.d/${name}.yaml`, request, unchanged: false, ...over });
const slotsOf = (o: GpuOutcome | undefined): string[] => (o?.kind === 'grant' ? o.grant.slots : []);
const reasonOf = (o: GpuOutcome | undefined): string => (o?.kind === 'grant' ? '' : (o?.reason ?? ''));

test('4 GPUs, 3 new apps asking 2 each: the first two by name get two each, the third waits naming who holds them', () => {
  const out = resolveGpuClaims([claimant('c', 2), claimant('b', 2), claimant('a', 2)], inventory());
  assert.deepEqual(slotsOf(out.get('a')), ['18:00.0', '2a:00.0']);
  assert.deepEqual(slotsOf(out.get('b')), ['3a:00.0', '5d:00.0']);
  assert.equal(out.get('c')?.kind, 'wait');
  assert.equal(
    reasonOf(out.get('c')),
    'apps.d/c.yaml: x-dstack.gpus asks for 2 GPUs; 0 of the 4 dstack-vmm lists are free: 0000:18:00.0 and 0000:2a:00.0 are held by app "a" ' +
      '(apps.d/a.yaml), 0000:3a:00.0 and 0000:5d:00.0 are held by app "b" (apps.d/b.yaml); it deploys once 2 are free',
  );
  assert.equal(GPU_UNAVAILABLE, 'APP_GPU_UNAVAILABLE');
});

test('an app whose VM runs this content keeps its GPUs, even one ListGpus no longer shows, and comes first', () => {
  const listed = { gpus: SLOTS.slice(1).map((s) => gpu(s, s !== '2a:00.0')), allowAttachAll: true };
  const out = resolveGpuClaims(
    [claimant('a', 2), claimant('z', 2, { unchanged: true, current: { mode: 'listed', slots: ['18:00.0', '2a:00.0'] } })],
    inventory({ listed }),
  );
  assert.deepEqual(slotsOf(out.get('z')), ['18:00.0', '2a:00.0']);
  assert.deepEqual(slotsOf(out.get('a')), ['3a:00.0', '5d:00.0']);
  // The same app after its file changed: the GPU that vanished is replaced, the other kept.
  const changed = resolveGpuClaims([claimant('z', 2, { current: { mode: 'listed', slots: ['18:00.0', '2a:00.0'] } })], inventory({ listed }));
  assert.deepEqual(slotsOf(changed.get('z')), ['2a:00.0', '3a:00.0']);
});

test('an upgrade keeps the GPUs the VM has and adds free ones; a grant still on its way is not given away', () => {
  const out = resolveGpuClaims(
    [claimant('a', 1), claimant('m', 3, { current: { mode: 'listed', slots: ['5d:00.0'] } }), claimant('n', 1, { previous: { mode: 'listed', slots: ['18:00.0'] } })],
    inventory({ listed: { gpus: [gpu('18:00.0', false), gpu('2a:00.0'), gpu('3a:00.0'), gpu('5d:00.0', false)], allowAttachAll: true } }),
  );
  assert.deepEqual(slotsOf(out.get('m')), ['5d:00.0', '2a:00.0', '3a:00.0']);
  assert.deepEqual(slotsOf(out.get('n')), ['18:00.0'], 'its CreateVm launched it already: not free, but its own');
  assert.match(reasonOf(out.get('a')), /0000:18:00\.0 is held by app "n" .*0000:2a:00\.0 and 0000:3a:00\.0 and 0000:5d:00\.0 are held by app "m"/);
});

test('"all": refused where vmm.toml does not allow it, waits while anyone holds a GPU, else every listed one', () => {
  const refused = resolveGpuClaims([claimant('a', 'all')], inventory({ listed: { gpus: SLOTS.map((s) => gpu(s)), allowAttachAll: false } }));
  assert.equal(refused.get('a')?.kind, 'refused');
  assert.match(reasonOf(refused.get('a')), /^apps\.d\/a\.yaml: x-dstack\.gpus is "all", but dstack-vmm does not allow attaching all GPUs \(\[cvm\.gpu\] allow_attach_all = false in vmm\.toml\); ask for a number/);
  const blocked = resolveGpuClaims([claimant('a', 'all')], inventory({ held: new Map([['0000:99:00.0', { app: 'old', file: 'apps.d/old.yaml' }]]) }));
  assert.match(reasonOf(blocked.get('a')), /asks for all GPUs; 0000:99:00\.0 is held by app "old"/);
  const all = resolveGpuClaims([claimant('a', 'all'), claimant('b', 1)], inventory());
  assert.deepEqual(all.get('a'), { kind: 'grant', grant: { mode: 'all', slots: SLOTS } });
  assert.match(reasonOf(all.get('b')), /0 of the 4 dstack-vmm lists are free/);
});

test('named GPUs: each must be listed and free; the reason says which is not and why', () => {
  const foreign = new Map([['0000:3a:00.0', { vm: 'by-hand', id: 'vm-7' }]]);
  const listed = { gpus: [gpu('18:00.0'), gpu('3a:00.0', false), gpu('5d:00.0', false)], allowAttachAll: true };
  const out = resolveGpuClaims([claimant('a', ['0000:18:00.0']), claimant('b', ['0000:18:00.0', '0000:3a:00.0', '0000:5d:00.0', '0000:99:00.0'])], inventory({ listed, foreign }));
  assert.deepEqual(slotsOf(out.get('a')), ['18:00.0'], 'sent to the VMM as it lists it');
  assert.equal(
    reasonOf(out.get('b')),
    'apps.d/b.yaml: x-dstack.gpus asks for GPUs 0000:18:00.0, 0000:3a:00.0, 0000:5d:00.0, 0000:99:00.0; 0000:18:00.0 is held by app "a" (apps.d/a.yaml); ' +
      '0000:3a:00.0 is held by VM "by-hand" (vm-7), which dstack-supervisor does not manage; ' +
      "0000:5d:00.0 is in use outside dstack-supervisor's apps (ListGpus: not free; a VM made by hand, or a host driver); " +
      '0000:99:00.0 is not one dstack-vmm lists (0000:18:00.0, 0000:3a:00.0, 0000:5d:00.0); it deploys once they are free',
  );
});

test('no GPU listed, too few, or ListGpus failing: the app waits and is told why', () => {
  const none = resolveGpuClaims([claimant('a', 1)], inventory({ listed: { gpus: [], allowAttachAll: true } }));
  assert.match(reasonOf(none.get('a')), /dstack-vmm lists no GPU \(\[cvm\.gpu\] enabled = false in vmm\.toml, or no GPU of the host matches its listing/);
  const few = resolveGpuClaims([claimant('a', 8)], inventory());
  assert.match(reasonOf(few.get('a')), /asks for 8 GPUs; dstack-vmm lists only 4 \(0000:18:00\.0, 0000:2a:00\.0, 0000:3a:00\.0, 0000:5d:00\.0\); it waits until the host has 8/);
  const { listed: _unasked, ...noList } = inventory();
  const failed = resolveGpuClaims([claimant('a', 1), claimant('k', 1, { unchanged: true, current: { mode: 'listed', slots: ['18:00.0'] } })], { ...noList, error: 'connect ECONNREFUSED' });
  assert.match(reasonOf(failed.get('a')), /the host's GPUs cannot be listed \(ListGpus: connect ECONNREFUSED\)/);
  assert.deepEqual(slotsOf(failed.get('k')), ['18:00.0'], 'an app that keeps its GPUs needs no list');
});

test('grants compare by PCI address whatever the form, and "all" by mode', () => {
  assert.ok(sameGrant(undefined, undefined));
  assert.ok(!sameGrant(undefined, { mode: 'listed', slots: ['18:00.0'] }));
  assert.ok(sameGrant({ mode: 'listed', slots: ['18:00.0', '2a:00.0'] }, { mode: 'listed', slots: ['0000:2a:00.0', '0000:18:00.0'] }));
  assert.ok(!sameGrant({ mode: 'listed', slots: ['18:00.0'] }, { mode: 'listed', slots: ['18:00.0', '2a:00.0'] }));
  assert.ok(sameGrant({ mode: 'all', slots: ['18:00.0'] }, { mode: 'all', slots: SLOTS }));
  assert.ok(!sameGrant({ mode: 'all', slots: SLOTS }, { mode: 'listed', slots: SLOTS }));
  assert.ok(grantSatisfies({ mode: 'listed', slots: ['18:00.0'] }, ['0000:18:00.0']));
  assert.ok(!grantSatisfies({ mode: 'listed', slots: ['18:00.0'] }, 2));
});
