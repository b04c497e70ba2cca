import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createVmSnapshot } from '../../src/controller/vm-snapshot.ts';
import { VmInfoSchema, type StatusRequestInput, type StatusResponse, type VmInfo } from '../../src/vmm/messages.ts';

const vm = (id: string, name: string): VmInfo => VmInfoSchema.parse({ id, name });

// The VMM's side only: a Status that answers from `vms` and counts the calls, by kind.
function fakeVmm(vms: VmInfo[]) {
  const calls: string[] = [];
  return {
    calls,
    vms,
    async status(req: StatusRequestInput = {}): Promise<StatusResponse> {
      calls.push(req.keyword === undefined ? 'full' : `keyword:${req.keyword}`);
      const listed = req.keyword === undefined ? vms : vms.filter((v) => v.name.includes(req.keyword as string));
      return { vms: listed, port_mapping_enabled: true, total: listed.length };
    },
  };
}

test('a full Status answers every app by name, duplicates in the VMM order, with no further call', async () => {
  const vmm = fakeVmm([vm('1', 'shop'), vm('2', 'blog'), vm('3', 'shop'), vm('4', 'shopfront')]);
  const snapshot = createVmSnapshot(vmm);
  await snapshot.refresh();
  assert.deepEqual((await snapshot.list('shop')).map((v) => v.id), ['1', '3']);
  assert.deepEqual((await snapshot.list('blog')).map((v) => v.id), ['2']);
  assert.deepEqual(await snapshot.list('none'), []);
  assert.deepEqual(vmm.calls, ['full']);
  // A caller's copy is its own.
  (await snapshot.list('shop')).pop();
  assert.equal((await snapshot.list('shop')).length, 2);
});

test('an app touched since the Status asks for its own VMs, until the next full Status', async () => {
  const vmm = fakeVmm([vm('1', 'shop'), vm('2', 'blog')]);
  const snapshot = createVmSnapshot(vmm);
  await snapshot.refresh();
  snapshot.touched('shop');
  vmm.vms.push(vm('5', 'shop'));
  assert.deepEqual((await snapshot.list('shop')).map((v) => v.id), ['1', '5']);
  assert.deepEqual((await snapshot.list('blog')).map((v) => v.id), ['2']);
  assert.deepEqual(vmm.calls, ['full', 'keyword:shop']);
  assert.deepEqual(snapshot.known().map((v) => v.id).sort(), ['1', '2', '5']);
  await snapshot.refresh();
  assert.deepEqual((await snapshot.list('shop')).map((v) => v.id), ['1', '5']);
  assert.deepEqual(vmm.calls, ['full', 'keyword:shop', 'full']);
});

test("a resync's full Status is decoded at the resync's pace", async () => {
  const paces: unknown[] = [];
  const snapshot = createVmSnapshot({
    async status(_req, opts) {
      paces.push(opts?.pace);
      return { vms: [vm('v1', 'web')], port_mapping_enabled: true, total: 1 };
    },
  });
  const pace = async () => undefined;
  await snapshot.refresh(pace);
  assert.deepEqual(paces, [pace]);
  assert.deepEqual((await snapshot.list('web')).map((v) => v.id), ['v1']);
});
