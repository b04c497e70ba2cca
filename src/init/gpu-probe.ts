// Init step 1, GPUs (issue 19): the NVIDIA GPUs of the host, read from sysfs below `[init]
// sysroot` (`/sys/bus/pci/devices/*/vendor|device|class|driver`), and whether each is bound to
// vfio-pci, without which QEMU cannot pass it to a CVM. No GPU is not a problem; a GPU on another
// driver is a warning saying how to rebind it. Confidential-computing mode is not in sysfs (it is
// a GPU register that NVIDIA's gpu-admin-tools read over MMIO), so it is only said how to check.
import { readFile, readdir, readlink } from 'node:fs/promises';
import { basename, join } from 'node:path';

// One NVIDIA display or 3D controller. `slot` is the address as lspci prints it, which is the form
// dstack-vmm compares `[cvm.gpu] include`/`exclude` against.
export type HostGpu = { address: string; slot: string; productId: string; driver: string | undefined };

const NVIDIA = '0x10de';
// PCI base class 0x03: display controllers (VGA 0x0300, 3D 0x0302, which data-centre GPUs are).
const DISPLAY_CLASS = 0x03;

// The GPUs dstack runs confidential workloads on (pci.ids names; NVIDIA gpu-admin-tools agrees on
// the ids); upstream's vmm.toml lists 10de:2335 (H200) as its example. B200: a real host's
// `lspci -nnk` prints "GB100 [B200] [10de:2901]" (test/fixtures/sysfs/recorded/README.md);
// NVIDIA's driver README lists 2901 and 2909 as "NVIDIA B200", and upstream dstack's listing
// (Dstack-TEE/dstack#1161) names 2909 "GB100 [HGX B200 168GB]" from pci.ids. A B200 board's
// NVSwitches are no NVIDIA PCI function of the host, so there is no id of theirs to know.
const PRODUCTS: Readonly<Record<string, { name: string; lspci: string }>> = {
  '10de:2330': { name: 'H100 SXM', lspci: 'GH100 [H100 SXM5 80GB]' },
  '10de:2331': { name: 'H100 PCIe', lspci: 'GH100 [H100 PCIe]' },
  '10de:2335': { name: 'H200', lspci: 'GH100 [H200 SXM 141GB]' },
  '10de:2901': { name: 'B200', lspci: 'GB100 [B200]' },
  '10de:2909': { name: 'B200', lspci: 'GB100 [HGX B200 168GB]' },
};

// A short name for messages: "H200", or the product id for one not in the table.
export function nvidiaGpuName(productId: string): string {
  return PRODUCTS[productId]?.name ?? `NVIDIA ${productId}`;
}

// ListGpus' `description`: lspci's vendor and device names (upstream drops a bare "Device").
export function nvidiaGpuDescription(productId: string): string {
  const known = PRODUCTS[productId];
  return known ? `NVIDIA Corporation ${known.lspci}` : 'NVIDIA Corporation';
}

// Every NVIDIA GPU under `sysroot`, by address; none when the host has no PCI bus in sysfs.
export async function probeGpus(sysroot: string): Promise<HostGpu[]> {
  const dir = join(sysroot, '/sys/bus/pci/devices');
  const addresses = await readdir(dir).catch(() => [] as string[]);
  // lspci leaves the domain out when every device is in domain 0000 (Intel VMD adds others).
  const domainZero = addresses.every((a) => a.startsWith('0000:'));
  const gpus: HostGpu[] = [];
  for (const address of addresses.sort()) {
    const read = (name: string) => readFile(join(dir, address, name), 'utf8').then((text) => text.trim(), () => undefined);
    const [vendor, device, pciClass] = await Promise.all([read('vendor'), read('device'), read('class')]);
    if (vendor?.toLowerCase() !== NVIDIA || device === undefined || pciClass === undefined) continue;
    if (Number.parseInt(pciClass, 16) >> 16 !== DISPLAY_CLASS) continue;
    const driver = await readlink(join(dir, address, 'driver')).then(basename, () => undefined);
    const slot = domainZero ? address.slice(5) : address;
    gpus.push({ address, slot, productId: `10de:${device.toLowerCase().replace(/^0x/, '')}`, driver });
  }
  return gpus;
}

// What the preflight says about them: one line per GPU, warnings for those no CVM can have.
export function reviewGpus(gpus: readonly HostGpu[]): { notes: string[]; warnings: string[] } {
  const notes: string[] = [];
  const warnings: string[] = [];
  for (const gpu of gpus) {
    const what = `GPU ${gpu.address}: ${nvidiaGpuName(gpu.productId)} (${gpu.productId})`;
    if (gpu.driver === 'vfio-pci') {
      notes.push(`${what}, bound to vfio-pci: dstack-vmm can give it to a CVM`);
      continue;
    }
    const bound = gpu.driver === undefined ? 'is bound to no driver' : `is bound to ${gpu.driver}, not vfio-pci`;
    warnings.push(
      `${what} ${bound}, so QEMU cannot pass it to a CVM and init leaves it out of [cvm.gpu]; bind it to vfio-pci ` +
        `(\`echo vfio-pci > /sys/bus/pci/devices/${gpu.address}/driver_override\`, ` +
        `${gpu.driver === undefined ? '' : `\`echo ${gpu.address} > /sys/bus/pci/devices/${gpu.address}/driver/unbind\`, `}` +
        `\`echo ${gpu.address} > /sys/bus/pci/drivers_probe\`; or \`vfio-pci.ids=${gpu.productId}\` on the kernel command line), then run init again`,
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
