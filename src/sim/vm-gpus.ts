// The simulated host's GPUs and dstack-vmm's rules for them (Dstack-TEE/dstack 312dc605):
// `GpuConfig::list_devices` (config.rs) lists the lspci devices whose product id `[cvm.gpu]
// listing` names, minus `exclude`, only `include` when that is set, each free while its bus
// mastering is off, i.e. no QEMU has it; `resolve_gpus_with_config` (main_service.rs) is
// CreateVm's and UpdateVm's only GPU check; at launch QEMU opens each slot (qemu.rs
// `configure_gpus`), and that is where an unknown or busy slot fails.
import { canonicalPciAddress } from '../app/gpus.ts';
import type { GpuConfig, GpuInfo } from '../vmm/messages.ts';
import { nvidiaGpuDescription, type NvidiaKind } from '../init/gpu-probe.ts';
import { gpuTableOf } from '../init/gpu-config.ts';
import { VmmRejection } from './vm-rules.ts';

// One fake PCI device at `address` (sysfs form), bound to `driver`: a GPU (3D controller), or with
// `kind` 'nvswitch' an NVSwitch (class 0x0680, lspci's "Bridge").
export type SimGpu = { address: string; productId: string; driver: string; kind?: NvidiaKind };

// The GPUs supervisor.toml `[sim] gpus` gives the simulated host.
export function simGpusOf(entries: readonly { slot: string; product_id: string; driver: string; kind: NvidiaKind }[]): SimGpu[] {
  return entries.map((e) => ({ address: canonicalPciAddress(e.slot) ?? e.slot, productId: e.product_id, driver: e.driver, kind: e.kind }));
}

// `[cvm.gpu]` as the VMM loaded it.
export type SimGpuSettings = { enabled: boolean; listing: string[]; include: string[]; exclude: string[]; allowAttachAll: boolean };

// `[cvm.gpu]` as init renders it for these GPUs (src/init/gpu-config.ts), for a simulated host
// without init, whose VMM reads no vmm.toml; off when none is on vfio-pci.
export function gpuSettingsFor(host: readonly SimGpu[]): Partial<{ gpu: SimGpuSettings }> {
  const table = gpuTableOf(host.map((g) => ({ kind: g.kind ?? 'gpu', address: g.address, slot: lspciSlot(g.address, host), productId: g.productId, driver: g.driver || undefined })));
  if (table === undefined) return {};
  const strings = (key: string) => table[key] as string[];
  return { gpu: { enabled: true, listing: strings('listing'), include: strings('include'), exclude: strings('exclude'), allowAttachAll: table['allow_attach_all'] === true } };
}

// How lspci prints a device's slot, which is what the VMM lists and compares: without the domain
// when every device of the host is in domain 0000 (lspci's default, no -D).
export function lspciSlot(address: string, host: readonly SimGpu[]): string {
  const allZero = host.every((g) => g.address.startsWith('0000:'));
  return allZero && address.startsWith('0000:') ? address.slice(5) : address;
}

// ListGpus: empty while GPUs are off.
export function listSimGpus(host: readonly SimGpu[], settings: SimGpuSettings, busy: ReadonlySet<string>): GpuInfo[] {
  if (!settings.enabled) return [];
  return host
    .filter((g) => {
      const slot = lspciSlot(g.address, host);
      return settings.listing.includes(g.productId) && !settings.exclude.includes(slot) && (settings.include.length === 0 || settings.include.includes(slot));
    })
    .map((g) => ({
      slot: lspciSlot(g.address, host),
      product_id: g.productId,
      description: nvidiaGpuDescription(g.productId),
      // A device the host's own driver holds has bus mastering on, as one a running QEMU holds.
      is_free: g.driver === 'vfio-pci' && !busy.has(g.address),
    }));
}

// What CreateVm and UpdateVm store: the GpuConfig VmInfo shows, and the NVSwitches (lspci slots)
// "all" took besides, which upstream's manifest keeps (app.rs `GpuConfig.bridges`) and its VmInfo,
// like vmm_rpc.proto's GpuConfig, has no field for.
export type SimGpuResolution = { config: GpuConfig; bridges: string[] };

// `resolve_gpus_with_config`: the resolution for a requested GpuConfig, or the VMM's error. "all"
// becomes every NVIDIA 3D controller and every NVSwitch the host has, listed or not.
export function resolveSimGpus(request: GpuConfig | undefined, host: readonly SimGpu[], settings: SimGpuSettings): SimGpuResolution {
  if (request === undefined) return { config: { attach_mode: 'listed', gpus: [] }, bridges: [] };
  const empty = request.attach_mode !== 'all' && request.gpus.length === 0;
  if (!settings.enabled && !empty) throw new VmmRejection('GPU is not enabled');
  if (request.attach_mode === 'listed') return { config: { attach_mode: 'listed', gpus: request.gpus.map((g) => ({ slot: g.slot })) }, bridges: [] };
  if (request.attach_mode !== 'all') throw new VmmRejection(`Invalid GPU attach mode: ${request.attach_mode}`);
  if (!settings.allowAttachAll) throw new VmmRejection('Attaching all GPUs is not allowed');
  const slotsOf = (kind: NvidiaKind) => host.filter((g) => (g.kind ?? 'gpu') === kind).map((g) => lspciSlot(g.address, host));
  return { config: { attach_mode: 'all', gpus: slotsOf('gpu').map((slot) => ({ slot })) }, bridges: slotsOf('nvswitch') };
}

// The slots QEMU is to open, in its order (`configure_gpus`): the GPUs, then the NVSwitches, and
// neither without a GPU. None with `[cvm.gpu] enabled = false`: the VMM then launches without any
// (`try_allocate_gpus`).
export function vfioSlotsOf(config: GpuConfig | undefined, bridges: readonly string[], settings: SimGpuSettings): string[] {
  const gpus = (config?.gpus ?? []).map((g) => g.slot);
  return settings.enabled && gpus.length > 0 ? [...gpus, ...bridges] : [];
}

// Why QEMU cannot open these slots (`busy`: the addresses running VMs hold), in QEMU's words as far
// as they are known; undefined when it can.
export function gpuLaunchProblem(slots: readonly string[], host: readonly SimGpu[], busy: ReadonlySet<string>): string | undefined {
  for (const [i, slot] of slots.entries()) {
    const address = canonicalPciAddress(slot) ?? slot;
    const device = host.find((g) => g.address === address);
    const qemu = `qemu-system-x86_64: -device vfio-pci,host=${slot},bus=pci.${i + 1},iommufd=iommufd0: vfio ${address}`;
    if (!device) return `${qemu}: no such host device: No such file or directory`;
    if (device.driver !== 'vfio-pci') return `${qemu}: the device is bound to ${device.driver || 'no driver'}, not vfio-pci`;
    if (busy.has(address)) return `${qemu}: Device or resource busy`;
  }
  return undefined;
}

// The addresses a launch with these slots takes.
export function launchedAddresses(slots: readonly string[]): string[] {
  return slots.map((slot) => canonicalPciAddress(slot) ?? slot);
}
