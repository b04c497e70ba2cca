// The VMM's list of VMs, shared by every reconcile of a pass: one full Status per pass instead of
// one per app, and a narrow Status (by name) for an app whose VMs changed since that Status was
// asked for.
import type { VmInfo, StatusRequestInput, StatusResponse } from '../vmm/messages.ts';

export type VmSnapshot = {
  // Fetch every VM now (start of a resync pass).
  refresh(): Promise<void>;
  // The VMs that may belong to app `name`: from the pass snapshot, or asked for afresh.
  list(name: string): Promise<VmInfo[]>;
  // App `name` is changing its VMs (call before and after): a snapshot asked for before the
  // later call does not speak for it.
  touched(name: string): void;
  // The latest VMs seen for every name: the last full Status, updated by each narrower one.
  known(): readonly VmInfo[];
};

// Create a snapshot over a VMM client.
export function createVmSnapshot(vmm: { status(req?: StatusRequestInput): Promise<StatusResponse> }): VmSnapshot {
  let vms: VmInfo[] | undefined;
  // A logical clock: each refresh and each touch takes the next tick.
  let tick = 0;
  let takenAt = -1;
  const touchedAt = new Map<string, number>();
  let latest = new Map<string, VmInfo[]>();
  return {
    async refresh() {
      const asked = ++tick;
      const fresh = (await vmm.status({ brief: false })).vms;
      if (asked > takenAt) {
        vms = fresh;
        takenAt = asked;
        latest = new Map();
        for (const vm of fresh) latest.set(vm.name, [...(latest.get(vm.name) ?? []), vm]);
      }
    },
    async list(name) {
      if (vms === undefined) await this.refresh();
      if ((touchedAt.get(name) ?? -1) < takenAt) return (vms ?? []).filter((v) => v.name === name);
      // keyword matches name, id, app id or image as a substring (docs/dstack.md §2); keep exact names.
      const mine = (await vmm.status({ keyword: name, brief: false })).vms.filter((v) => v.name === name);
      latest.set(name, mine);
      return mine;
    },
    touched(name) {
      touchedAt.set(name, ++tick);
    },
    known: () => [...latest.values()].flat(),
  };
}
