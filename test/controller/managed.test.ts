// Issue 18: the managed apps an event pass plans with are those a full pass would build from the
// same records and VMs, yet only the apps whose record or VMs changed get a new entry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStateStore } from '../../src/state/store.ts';
import type { AppRecord } from '../../src/state/record.ts';
import { createVmSnapshot } from '../../src/controller/vm-snapshot.ts';
import { createManagedIndex, managedEntry } from '../../src/controller/managed.ts';
import type { LoadedRecords } from '../../src/state/store.ts';
import type { ManagedApp } from '../../src/controller/desired.ts';
import { VmInfoSchema, type StatusRequestInput, type StatusResponse, type VmInfo } from '../../src/vmm/messages.ts';
import { defer } from '../helpers/cleanup.ts';

const appIdOf = (name: string) => createHash('sha256').update(name).digest('hex').slice(0, 40);
const recordOf = (name: string, vmId?: string): AppRecord => ({
  name,
  file: `apps.d/${name}.yml`,
  appId: appIdOf(name),
  phase: 'running',
  registeredHashes: [],
  ...(vmId ? { vmId } : {}),
});
const vmOf = (id: string, name: string, port?: number): VmInfo =>
  VmInfoSchema.parse({
    id,
    name,
    app_id: appIdOf(name),
    status: 'running',
    configuration: { name, compose_file: '{}', image: 'img', ports: port === undefined ? [] : [{ protocol: 'tcp', host_port: port, vm_port: 80, host_address: '0.0.0.0' }] },
  });

// A VMM whose Status answers from `vms`.
function fakeVmm(vms: VmInfo[]) {
  const vmm = {
    vms,
    async status(req: StatusRequestInput = {}): Promise<StatusResponse> {
      const listed = req.keyword === undefined ? vmm.vms : vmm.vms.filter((v) => v.name.includes(req.keyword as string));
      return { vms: listed, port_mapping_enabled: true, total: listed.length };
    },
  };
  return vmm;
}

async function stage(t: { after: (fn: () => Promise<void>) => void }) {
  const dir = await mkdtemp(join(tmpdir(), 'managed-index-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  const records = await openStateStore(dir);
  const vmm = fakeVmm([]);
  const snapshot = createVmSnapshot(vmm);
  return { records, vmm, snapshot, index: createManagedIndex({ records, vms: snapshot }) };
}

const sorted = (m: ReadonlyMap<string, unknown>) => [...m].sort(([a], [b]) => (a < b ? -1 : 1));

// What a full build from scratch gives: every record and unreadable file, with the VMs of one flat
// list indexed here, not by the snapshot.
function managedApps(loaded: LoadedRecords, vms: readonly VmInfo[]): Map<string, ManagedApp> {
  const lookup = {
    named: (name: string) => vms.filter((v) => v.name === name),
    vmById: (id: string) => vms.find((v) => v.id === id),
  };
  const managed = new Map<string, ManagedApp>(loaded.records.map((record) => [record.name, managedEntry({ record }, lookup)]));
  for (const unreadable of loaded.unreadable) managed.set(unreadable.name, managedEntry({ unreadable }, lookup));
  return managed;
}

test('an event pass gives a new entry only to the apps whose record or VMs changed', async (t) => {
  const { records, vmm, snapshot, index } = await stage(t);
  for (const name of ['alpha', 'bravo', 'charlie']) {
    await records.save(recordOf(name, `vm-${name}`));
    vmm.vms.push(vmOf(`vm-${name}`, name, name === 'bravo' ? 8080 : undefined));
  }
  // As a resync does before its pass: every record and VM read again.
  await Promise.all([snapshot.refresh(), records.loadAll({ recheck: true })]);
  const first = await index.current();
  const before = new Map(first);
  await records.save({ ...recordOf('alpha', 'vm-alpha'), phase: 'failed' });
  snapshot.touched('bravo');
  vmm.vms[1] = vmOf('vm-bravo', 'bravo', 9090);
  await snapshot.list('bravo');
  const after = await index.current();
  assert.notEqual(after.get('alpha'), before.get('alpha'));
  assert.deepEqual(after.get('bravo')?.ports, [{ protocol: 'tcp', host_port: 9090 }]);
  assert.equal(after.get('charlie'), before.get('charlie'), 'charlie changed in nothing: the same entry');
  assert.deepEqual(sorted(after), sorted(managedApps(await records.loadAll({ recheck: false }), snapshot.known())));
});

test('over a random run of writes, removals, bad records and VM changes, each event pass equals a full build from the same memory', async (t) => {
  const { records, vmm, snapshot, index } = await stage(t);
  const names = ['alpha', 'bravo', 'charlie', 'delta', 'echo'];
  let seed = 18;
  // An LCG's high bits (its low ones repeat with short periods).
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return Math.floor((seed / 2 ** 31) * n);
  };
  await Promise.all([snapshot.refresh(), records.loadAll({ recheck: true })]);
  await index.current();
  let vmSerial = 0;
  for (let step = 0; step < 300; step++) {
    const name = names[random(names.length)] as string;
    switch (random(6)) {
      case 0:
        await records.save(recordOf(name, random(2) === 0 ? undefined : `vm-${name}-${random(3)}`));
        break;
      case 1:
        await records.remove(name);
        break;
      case 2:
        // Someone else's damage, found only by a full load.
        await writeFile(join(records.dir, `${name}.json`), 'garbage');
        await records.loadAll({ recheck: true });
        break;
      default: {
        // The app's VMs change and its reconcile asks for them.
        snapshot.touched(name);
        vmm.vms = vmm.vms.filter((v) => v.name !== name);
        for (let i = random(3); i > 0; i--) vmm.vms.push(vmOf(`vm-${name}-${vmSerial++ % 3}`, name, random(2) === 0 ? 7000 + random(5) : undefined));
        await snapshot.list(name);
      }
    }
    const event = await index.current();
    assert.deepEqual(sorted(event), sorted(managedApps(await records.loadAll({ recheck: false }), snapshot.known())), `step ${step}`);
  }
});
