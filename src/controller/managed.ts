// The apps we own (have a record for) as the planner sees them: each with the host ports its VM
// holds, found by VM id or by name and app id in the VMs the pass knows. Kept from pass to pass:
// a full pass builds every entry; an event pass redoes only those whose record or VMs changed
// since, so beside 5 000 apps a drop rebuilds one or two of them, not 5 000 (issue 18).
import type { LoadedRecords, StateStore, UnreadableRecord } from '../state/store.ts';
import type { AppRecord } from '../state/record.ts';
import type { VmInfo } from '../vmm/messages.ts';
import type { VmSnapshot } from './vm-snapshot.ts';
import type { ManagedApp } from './desired.ts';
import { manifestPorts, portsLeft, portsOfGuest, type PortClaim } from './port-claims.ts';

// Where an entry's VMs are looked up: those of its name, and any by id.
export type VmLookup = { named(name: string): readonly VmInfo[]; vmById(id: string): VmInfo | undefined };

// One app's entry. A record: the VM it names (or adoption would find) holds what its manifest
// names and, mid-operation, what its guest was launched with. A record that cannot be read: why,
// and the ports of every VM of the name: which VM is theirs is what the record would say, and none
// of them lets go of its ports while held.
export function managedEntry(of: { record: AppRecord } | { unreadable: UnreadableRecord }, vms: VmLookup): ManagedApp {
  if ('unreadable' in of) {
    const u = of.unreadable;
    return { file: u.file, running: false, ports: vms.named(u.name).flatMap(manifestPorts), unreadable: { code: u.error.code, message: u.error.message } };
  }
  const r = of.record;
  const vm = (r.vmId === undefined ? undefined : vms.vmById(r.vmId)) ?? vms.named(r.name).find((v) => v.app_id === r.appId);
  const ports = vm ? unionOfPorts(manifestPorts(vm), portsOfGuest(r, vm)) : [];
  return { file: r.file, running: r.appliedHash !== undefined, ports, operating: r.intent !== undefined, ...(vm ? { vmId: vm.id } : {}) };
}

// Every app of `loaded`, with its VMs looked up in `vms`.
function managedApps(loaded: LoadedRecords, vms: VmLookup): Map<string, ManagedApp> {
  const managed = new Map<string, ManagedApp>(loaded.records.map((record) => [record.name, managedEntry({ record }, vms)]));
  for (const unreadable of loaded.unreadable) managed.set(unreadable.name, managedEntry({ unreadable }, vms));
  return managed;
}

// The ports a VM holds: what its manifest names (the VMM's rule) and what its guest binds.
function unionOfPorts(a: readonly PortClaim[], b: readonly PortClaim[]): PortClaim[] {
  return [...a, ...portsLeft(b, a)];
}

export type ManagedIndex = {
  // The managed apps from the records as the store last loaded or wrote them and the VMs the
  // snapshot knows (a resync reloads both before its pass). The same map, updated in place: an
  // entry is a new object only when its record or VMs changed; after a full Status every entry is
  // built again. A record whose VM id is that of a VM of another name (never made by us) is seen
  // again after the next full Status.
  current(): Promise<Map<string, ManagedApp>>;
};

export function createManagedIndex(deps: {
  records: Pick<StateStore, 'loadAll' | 'peek' | 'takeChanged'>;
  vms: Pick<VmSnapshot, 'named' | 'vmById' | 'takeChanged'>;
}): ManagedIndex {
  const { records, vms } = deps;
  let managed: Map<string, ManagedApp> | undefined;
  return {
    async current() {
      const recordsChanged = records.takeChanged();
      const vmsChanged = vms.takeChanged();
      if (vmsChanged === 'all' || managed === undefined) {
        managed = managedApps(await records.loadAll({ recheck: false }), vms);
        return managed;
      }
      for (const name of new Set([...recordsChanged, ...vmsChanged])) {
        const of = records.peek(name);
        if (of === undefined) managed.delete(name);
        else managed.set(name, managedEntry(of, vms));
      }
      return managed;
    },
  };
}
