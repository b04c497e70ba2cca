// The VMM's list of VMs, shared by every reconcile of a pass: one full Status per pass instead of
// one per app, and a narrow Status (by name) for an app whose VMs changed since that Status was
// asked for.
import type { VmInfo, StatusRequestInput, StatusResponse } from '../vmm/messages.ts';
import type { CallOptions } from '../vmm/client.ts';
import type { Pace } from '../fsx/in-chunks.ts';

export type VmSnapshot = {
  // Fetch every VM now (a resync; `pace` as for the VMM client's Status).
  refresh(pace?: Pace): Promise<void>;
  // The VMs that may belong to app `name`: from the pass snapshot, or asked for afresh.
  list(name: string): Promise<VmInfo[]>;
  // App `name` is changing its VMs (call before and after): a snapshot asked for before the
  // later call does not speak for it.
  touched(name: string): void;
  // The latest VMs seen for every name: the last full Status, updated by each narrower one. The
  // same array while they stay the same (not to be edited).
  known(): readonly VmInfo[];
  // What known() holds of one name (the same array while it stays the same) and of one VM id.
  named(name: string): readonly VmInfo[];
  vmById(id: string): VmInfo | undefined;
  // The names whose VMs known() holds changed since the last call; 'all' after a full Status.
  takeChanged(): Set<string> | 'all';
};

// Create a snapshot over a VMM client.
export function createVmSnapshot(vmm: { status(req?: StatusRequestInput, opts?: CallOptions): Promise<StatusResponse> }): VmSnapshot {
  // The last full Status by VM name: a resync asks once per app, 5 000 times beside 5 000 VMs, and
  // filtering the whole list each time was a third of the pass's CPU (issue 18).
  let byName: Map<string, VmInfo[]> | undefined;
  // A logical clock: each refresh and each touch takes the next tick.
  let tick = 0;
  let takenAt = -1;
  const touchedAt = new Map<string, number>();
  let latest = new Map<string, VmInfo[]>();
  // known() as last built, until `latest` changes: the same array for the same VMs.
  let knownList: VmInfo[] | undefined;
  const byId = new Map<string, VmInfo>();
  let changed: Set<string> | 'all' = 'all';
  // Name `name` now has `vms`: the id index and the change set follow.
  const setNamed = (name: string, vms: VmInfo[]) => {
    for (const vm of latest.get(name) ?? []) if (byId.get(vm.id) === vm) byId.delete(vm.id);
    for (const vm of vms) if (!byId.has(vm.id)) byId.set(vm.id, vm);
    latest.set(name, vms);
    knownList = undefined;
    if (changed !== 'all') changed.add(name);
  };
  return {
    async refresh(pace) {
      const asked = ++tick;
      const fresh = (await vmm.status({ brief: false }, { pace })).vms;
      if (asked > takenAt) {
        takenAt = asked;
        byName = new Map();
        byId.clear();
        for (const vm of fresh) {
          const same = byName.get(vm.name);
          if (same) same.push(vm);
          else byName.set(vm.name, [vm]);
          if (!byId.has(vm.id)) byId.set(vm.id, vm);
        }
        latest = new Map(byName);
        knownList = undefined;
        changed = 'all';
      }
    },
    async list(name) {
      if (byName === undefined) await this.refresh();
      if ((touchedAt.get(name) ?? -1) < takenAt) return [...(byName?.get(name) ?? [])];
      // keyword matches name, id, app id or image as a substring (docs/dstack.md §2); keep exact names.
      const mine = (await vmm.status({ keyword: name, brief: false })).vms.filter((v) => v.name === name);
      setNamed(name, mine);
      return mine;
    },
    touched(name) {
      touchedAt.set(name, ++tick);
    },
    known: () => (knownList ??= [...latest.values()].flat()),
    named: (name) => latest.get(name) ?? [],
    vmById: (id) => byId.get(id),
    takeChanged() {
      const taken = changed;
      changed = new Set();
      return taken;
    },
  };
}
