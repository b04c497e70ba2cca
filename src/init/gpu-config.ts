// vmm.toml `[cvm.gpu]` for the GPUs the preflight found (issue 19). It is no derived key: an
// operator's edit of the table is kept, like every rendered key. What init wrote last is in its
// journal, so a table still as init left it (the template's `enabled = false` on every host
// rendered before) is brought up to date when GPUs appear or change, and an edited one is not.
import type { NvidiaDevice } from './gpu-probe.ts';
import { canonical, getPath, isTable, type Doc } from './merge.ts';

// The table for `devices`: the VMM lists the product ids of the GPUs bound to vfio-pci and leaves
// out GPUs of those ids QEMU could not open. "all" attaches every NVIDIA GPU and NVSwitch, and QEMU
// fails the launch on one it cannot open, so it is allowed only when every one is on vfio-pci.
// Undefined when no GPU is usable: the template's table stays.
export function gpuTableOf(devices: readonly NvidiaDevice[]): Doc | undefined {
  const gpus = devices.filter((d) => d.kind === 'gpu');
  const usable = gpus.filter((g) => g.driver === 'vfio-pci');
  if (usable.length === 0) return undefined;
  const listing = [...new Set(usable.map((g) => g.productId))].sort();
  const exclude = gpus.filter((g) => g.driver !== 'vfio-pci' && listing.includes(g.productId)).map((g) => g.slot);
  return { enabled: true, listing, exclude, include: [], allow_attach_all: devices.every((d) => d.driver === 'vfio-pci') };
}

// How init treats `[cvm.gpu]` this run: `drop` takes the file's table out before the merge, so the
// defaults (with `probed` in them) fill it; `rendered` is the table init answers for afterwards,
// for the journal; `note` says what happened, when something did.
export type GpuTablePlan = { drop: boolean; rendered: string; note?: string };

// Decide. `lastRendered`: the journal's, or the template's table on a host init rendered before
// it recorded one.
export function planGpuTable(existing: Doc | undefined, probed: Doc | undefined, lastRendered: string): GpuTablePlan {
  const current = existing === undefined ? undefined : getPath(existing, ['cvm', 'gpu']);
  if (probed === undefined) return { drop: false, rendered: lastRendered };
  const next = canonical(probed);
  if (current !== undefined && canonical(current) === next) return { drop: false, rendered: next };
  if (current === undefined || (isTable(current) && canonical(current) === lastRendered)) {
    return { drop: current !== undefined, rendered: next, note: `[cvm.gpu] rendered for the GPUs found: ${next}` };
  }
  return { drop: false, rendered: lastRendered, note: `[cvm.gpu] was edited by hand and is kept (for the GPUs found init would render ${next})` };
}

// `doc` with `[cvm.gpu]` replaced by `table` (a copy; the rest shared).
export function withGpuTable(doc: Doc, table: Doc): Doc {
  const cvm = doc['cvm'];
  return { ...doc, cvm: { ...(isTable(cvm) ? cvm : {}), gpu: table } };
}

// `doc` without `[cvm.gpu]` (a copy; the rest shared).
export function withoutGpuTable(doc: Doc): Doc {
  const cvm = doc['cvm'];
  if (!isTable(cvm)) return doc;
  const { gpu: _gpu, ...rest } = cvm;
  return { ...doc, cvm: rest };
}
