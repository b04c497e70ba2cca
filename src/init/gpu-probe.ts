// Init step 1, GPUs (issue 19): the NVIDIA GPUs and NVSwitches of the host, read from sysfs below
// `[init] sysroot` (`/sys/bus/pci/devices/*/vendor|device|class|driver`), and whether each is bound
// to vfio-pci, without which QEMU cannot pass it to a CVM. No GPU is not a problem; a GPU or
// NVSwitch on another driver is a warning saying how to rebind it. Confidential-computing mode is
// not in sysfs (it is a GPU register that NVIDIA's gpu-admin-tools read over MMIO), so it is only
// said how to check.
import { readFile, readdir, readlink } from 'node:fs/promises';
import { basename, join } from 'node:path';

// What an NVIDIA PCI function is to dstack-vmm: a GPU, or an NVSwitch, which its attach mode "all"
// passes to the CVM too (upstream calls them bridges).
export const NVIDIA_KINDS = ['gpu', 'nvswitch'] as const;
export type NvidiaKind = (typeof NVIDIA_KINDS)[number];

// One NVIDIA GPU or NVSwitch. `slot` is the address as lspci prints it, which is the form
// dstack-vmm compares `[cvm.gpu] include`/`exclude` against.
export type NvidiaDevice = { kind: NvidiaKind; address: string; slot: string; productId: string; driver: string | undefined };

const NVIDIA = '0x10de';
// PCI base class 0x03: display controllers (VGA 0x0300, 3D 0x0302, which data-centre GPUs are).
const DISPLAY_CLASS = 0x03;
// PCI class 0x0680, "other bridge", which lspci names "Bridge": an HGX H100/H200 board's NVSwitches
// (10de:22a3). dstack-vmm's "all" takes the NVIDIA functions whose lspci class contains "Bridge"
// (main_service.rs `resolve_gpus`), so not NVIDIA's PCI bridges (0x0604, "PCI bridge").
const OTHER_BRIDGE_CLASS = 0x0680;

// The GPUs dstack runs confidential workloads on (pci.ids names; NVIDIA gpu-admin-tools agrees on
// the ids); upstream's vmm.toml lists 10de:2335 (H200) as its example. B200: a real host's
// `lspci -nnk` prints "GB100 [B200] [10de:2901]" (test/fixtures/sysfs/recorded/README.md);
// NVIDIA's driver README lists 2901 and 2909 as "NVIDIA B200", and upstream dstack's listing
// (Dstack-TEE/dstack#1161) names 2909 "GB100 [HGX B200 168GB]" from pci.ids. A B200 board's
// NVSwitches are no NVIDIA PCI function of the host, so there is no id of theirs to know; an
// H100/H200 board's are "GH100 [H100 NVSwitch] [10de:22a3]" (upstream's lspci test listing).
const PRODUCTS: Readonly<Record<string, { name: string; lspci: string }>> = {
  '10de:2330': { name: 'H100 SXM', lspci: 'GH100 [H100 SXM5 80GB]' },
  '10de:2331': { name: 'H100 PCIe', lspci: 'GH100 [H100 PCIe]' },
  '10de:2335': { name: 'H200', lspci: 'GH100 [H200 SXM 141GB]' },
  '10de:2901': { name: 'B200', lspci: 'GB100 [B200]' },
  '10de:2909': { name: 'B200', lspci: 'GB100 [HGX B200 168GB]' },
  '10de:22a3': { name: 'H100 NVSwitch', lspci: 'GH100 [H100 NVSwitch]' },
};

// A short name for messages: "H200", or the product id for one not in the table.
function nvidiaName(productId: string): string {
  return PRODUCTS[productId]?.name ?? `NVIDIA ${productId}`;
}

// ListGpus' `description`: lspci's vendor and device names (upstream drops a bare "Device").
export function nvidiaGpuDescription(productId: string): string {
  const known = PRODUCTS[productId];
  return known ? `NVIDIA Corporation ${known.lspci}` : 'NVIDIA Corporation';
}

// Every NVIDIA GPU and NVSwitch under `sysroot`, by address; none when the host has no PCI bus in
// sysfs.
export async function probeGpus(sysroot: string): Promise<NvidiaDevice[]> {
  const dir = join(sysroot, '/sys/bus/pci/devices');
  const addresses = await readdir(dir).catch(() => [] as string[]);
  // lspci leaves the domain out when every device is in domain 0000 (Intel VMD adds others).
  const domainZero = addresses.every((a) => a.startsWith('0000:'));
  const devices: NvidiaDevice[] = [];
  for (const address of addresses.sort()) {
    const read = (name: string) => readFile(join(dir, address, name), 'utf8').then((text) => text.trim(), () => undefined);
    const [vendor, device, pciClass] = await Promise.all([read('vendor'), read('device'), read('class')]);
    if (vendor?.toLowerCase() !== NVIDIA || device === undefined || pciClass === undefined) continue;
    const kind = kindOf(Number.parseInt(pciClass, 16));
    if (kind === undefined) continue;
    const driver = await readlink(join(dir, address, 'driver')).then(basename, () => undefined);
    const slot = domainZero ? address.slice(5) : address;
    devices.push({ kind, address, slot, productId: `10de:${device.toLowerCase().replace(/^0x/, '')}`, driver });
  }
  return devices;
}

// An NVIDIA function's kind by its sysfs class (base, sub class, programming interface).
function kindOf(pciClass: number): NvidiaKind | undefined {
  if (pciClass >> 16 === DISPLAY_CLASS) return 'gpu';
  if (pciClass >> 8 === OTHER_BRIDGE_CLASS) return 'nvswitch';
  return undefined;
}

// How the preflight speaks of each kind: its name, what vfio-pci lets dstack-vmm do with it, what
// another driver costs, and the advice.
const SAID: Readonly<Record<NvidiaKind, { label: string; usable: string; unusable: string; rebind: string }>> = {
  gpu: { label: 'GPU', usable: 'dstack-vmm can give it to a CVM', unusable: 'init leaves it out of [cvm.gpu]', rebind: 'bind it to vfio-pci' },
  nvswitch: {
    label: 'NVSwitch',
    usable: 'dstack-vmm gives it to a CVM with attach mode "all"',
    unusable: 'init does not allow attach mode "all" in [cvm.gpu], which gives one CVM every NVIDIA GPU and NVSwitch of the host (`x-dstack: {gpus: all}`)',
    rebind: 'for multi-GPU "all" apps bind it to vfio-pci',
  },
};

// What the preflight says about them: one line per GPU, then per NVSwitch, warnings for those no
// CVM can have.
export function reviewGpus(devices: readonly NvidiaDevice[]): { notes: string[]; warnings: string[] } {
  const notes: string[] = [];
  const warnings: string[] = [];
  const gpus = devices.filter((d) => d.kind === 'gpu');
  for (const device of [...gpus, ...devices.filter((d) => d.kind === 'nvswitch')]) {
    const said = SAID[device.kind];
    const what = `${said.label} ${device.address}: ${nvidiaName(device.productId)} (${device.productId})`;
    if (device.driver === 'vfio-pci') {
      notes.push(`${what}, bound to vfio-pci: ${said.usable}`);
      continue;
    }
    const bound = device.driver === undefined ? 'is bound to no driver' : `is bound to ${device.driver}, not vfio-pci`;
    warnings.push(
      `${what} ${bound}, so QEMU cannot pass it to a CVM and ${said.unusable}; ${said.rebind} ` +
        `(\`echo vfio-pci > /sys/bus/pci/devices/${device.address}/driver_override\`, ` +
        `${device.driver === undefined ? '' : `\`echo ${device.address} > /sys/bus/pci/devices/${device.address}/driver/unbind\`, `}` +
        `\`echo ${device.address} > /sys/bus/pci/drivers_probe\`; or \`vfio-pci.ids=${device.productId}\` on the kernel command line), then run init again`,
    );
  }
  if (gpus.length > 0) {
    notes.push(
      'confidential-computing mode is a GPU setting sysfs does not show: check it with NVIDIA gpu-admin-tools ' +
        `(\`nvidia_gpu_tools.py --gpu-bdf=${gpus[0]!.address} --query-cc-mode\`) and turn it on with \`--set-cc-mode=on --reset-after-cc-mode-switch\`; ` +
        "a CVM's guest attests its GPUs at boot",
    );
  }
  return { notes, warnings };
}
