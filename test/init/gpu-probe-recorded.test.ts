// Issue 19's acceptance: the sysfs probe against trees built from listings real GPU hosts printed
// (test/fixtures/sysfs/recorded/README.md has each source). The expectations are read off those
// listings by hand, line by line, not taken from a run of the probe.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { probeGpus, reviewGpus } from '../../src/init/gpu-probe.ts';
import { gpuTableOf } from '../../src/init/gpu-config.ts';
import { reboundRecording } from './helpers.ts';

const RECORDED = join(import.meta.dirname, '../fixtures/sysfs/recorded');
const HGX_GPUS = ['18', '2a', '3a', '5d', '9a', 'ab', 'ba', 'db'].map((bus) => `0000:${bus}:00.0`);
const HGX_NVSWITCHES = ['0000:05:00.0', '0000:06:00.0'];

test('HGX H200 board (bigstack-oss/cubecos#259): the eight H200s on the host nvidia driver, and its NVSwitches on nvidia-nvswitch', async () => {
  const gpus = await probeGpus(join(RECORDED, 'hgx-h200-cubecos-259'));
  assert.deepEqual(
    gpus.map((g) => [g.kind, g.address, g.productId, g.driver ?? null]),
    [
      ['nvswitch', '0000:05:00.0', '10de:22a3', 'nvidia-nvswitch'],
      ['nvswitch', '0000:06:00.0', '10de:22a3', 'nvidia-nvswitch'],
      ...HGX_GPUS.map((address) => ['gpu', address, '10de:2335', 'nvidia']),
    ],
    'the listing in address order: 05:00.0 and 06:00.0 are "Bridge [0680]" (10de:22a3), the rest "3D controller [0302]"',
  );
});

test('HGX H200 board on nvidia: each GPU, then each NVSwitch, is a warning saying how to bind it, and [cvm.gpu] is left as the template has it', async () => {
  const gpus = await probeGpus(join(RECORDED, 'hgx-h200-cubecos-259'));
  const { notes, warnings } = reviewGpus(gpus);
  assert.equal(warnings.length, 10);
  for (const [i, address] of HGX_GPUS.entries()) {
    assert.ok(warnings[i]!.startsWith(`GPU ${address}: H200 (10de:2335) is bound to nvidia, not vfio-pci, so QEMU cannot pass it to a CVM`), warnings[i]);
    assert.ok(warnings[i]!.includes(`\`echo ${address} > /sys/bus/pci/devices/${address}/driver/unbind\``), warnings[i]);
    assert.ok(warnings[i]!.includes('`vfio-pci.ids=10de:2335` on the kernel command line'), warnings[i]);
  }
  assert.ok(warnings[8]!.startsWith('NVSwitch 0000:05:00.0: H100 NVSwitch (10de:22a3) is bound to nvidia-nvswitch, not vfio-pci'), warnings[8]);
  assert.ok(warnings[9]!.startsWith('NVSwitch 0000:06:00.0: H100 NVSwitch (10de:22a3) is bound to nvidia-nvswitch, not vfio-pci'), warnings[9]);
  assert.equal(notes.length, 1, 'only the note on confidential-computing mode');
  assert.match(notes[0]!, /--gpu-bdf=0000:18:00\.0 --query-cc-mode/);
  assert.equal(gpuTableOf(gpus), undefined, 'no GPU a CVM can have');
});

// The gap: dstack-vmm's "all" passes the NVSwitches to QEMU too (main_service.rs `resolve_gpus`,
// qemu.rs `configure_gpus`), which cannot open one the host's nvidia-nvswitch holds.
test('HGX H200 board with its GPUs rebound to vfio-pci but not its NVSwitches: "all" is not allowed, and each NVSwitch is a warning saying why and what to do', async (t) => {
  const gpus = await probeGpus(await reboundRecording(t, 'hgx-h200-cubecos-259', HGX_GPUS));
  const { notes, warnings } = reviewGpus(gpus);
  assert.deepEqual(warnings, [
    'NVSwitch 0000:05:00.0: H100 NVSwitch (10de:22a3) is bound to nvidia-nvswitch, not vfio-pci, so QEMU cannot pass it to a CVM and ' +
      'init does not allow attach mode "all" in [cvm.gpu], which gives one CVM every NVIDIA GPU and NVSwitch of the host (`x-dstack: {gpus: all}`); ' +
      'for multi-GPU "all" apps bind it to vfio-pci (`echo vfio-pci > /sys/bus/pci/devices/0000:05:00.0/driver_override`, ' +
      '`echo 0000:05:00.0 > /sys/bus/pci/devices/0000:05:00.0/driver/unbind`, `echo 0000:05:00.0 > /sys/bus/pci/drivers_probe`; ' +
      'or `vfio-pci.ids=10de:22a3` on the kernel command line), then run init again',
    'NVSwitch 0000:06:00.0: H100 NVSwitch (10de:22a3) is bound to nvidia-nvswitch, not vfio-pci, so QEMU cannot pass it to a CVM and ' +
      'init does not allow attach mode "all" in [cvm.gpu], which gives one CVM every NVIDIA GPU and NVSwitch of the host (`x-dstack: {gpus: all}`); ' +
      'for multi-GPU "all" apps bind it to vfio-pci (`echo vfio-pci > /sys/bus/pci/devices/0000:06:00.0/driver_override`, ' +
      '`echo 0000:06:00.0 > /sys/bus/pci/devices/0000:06:00.0/driver/unbind`, `echo 0000:06:00.0 > /sys/bus/pci/drivers_probe`; ' +
      'or `vfio-pci.ids=10de:22a3` on the kernel command line), then run init again',
  ]);
  assert.equal(notes.length, 9, 'the eight GPUs and the confidential-computing mode');
  assert.deepEqual(gpuTableOf(gpus), { enabled: true, listing: ['10de:2335'], exclude: [], include: [], allow_attach_all: false });
});

test('HGX H200 board with its GPUs and NVSwitches on vfio-pci: no warning, the NVSwitches named, and "all" allowed', async (t) => {
  const gpus = await probeGpus(await reboundRecording(t, 'hgx-h200-cubecos-259', [...HGX_GPUS, ...HGX_NVSWITCHES]));
  const { notes, warnings } = reviewGpus(gpus);
  assert.deepEqual(warnings, []);
  assert.deepEqual(notes.slice(8, 10), [
    'NVSwitch 0000:05:00.0: H100 NVSwitch (10de:22a3), bound to vfio-pci: dstack-vmm gives it to a CVM with attach mode "all"',
    'NVSwitch 0000:06:00.0: H100 NVSwitch (10de:22a3), bound to vfio-pci: dstack-vmm gives it to a CVM with attach mode "all"',
  ]);
  assert.deepEqual(gpuTableOf(gpus), { enabled: true, listing: ['10de:2335'], exclude: [], include: [], allow_attach_all: true });
});

test('H100 PCIe on vfio-pci (Contrast docs): found, named, and rendered into [cvm.gpu] with attach-all allowed', async () => {
  const gpus = await probeGpus(join(RECORDED, 'h100-pcie-contrast'));
  assert.deepEqual(
    gpus.map((g) => [g.address, g.slot, g.productId, g.driver ?? null]),
    [['0000:41:00.0', '41:00.0', '10de:2331', 'vfio-pci']],
  );
  assert.deepEqual(reviewGpus(gpus).warnings, []);
  assert.equal(reviewGpus(gpus).notes[0], 'GPU 0000:41:00.0: H100 PCIe (10de:2331), bound to vfio-pci: dstack-vmm can give it to a CVM');
  assert.deepEqual(gpuTableOf(gpus), { enabled: true, listing: ['10de:2331'], exclude: [], include: [], allow_attach_all: true });
});

test('B200 on vfio-pci (Contrast docs): a Blackwell 3D controller is found, named B200, and its product id rendered into the listing', async () => {
  const gpus = await probeGpus(join(RECORDED, 'b200-contrast'));
  assert.deepEqual(
    gpus.map((g) => [g.address, g.productId, g.driver ?? null]),
    [['0000:18:00.0', '10de:2901', 'vfio-pci']],
  );
  assert.deepEqual(reviewGpus(gpus).warnings, []);
  assert.equal(reviewGpus(gpus).notes[0], 'GPU 0000:18:00.0: B200 (10de:2901), bound to vfio-pci: dstack-vmm can give it to a CVM');
  assert.deepEqual(gpuTableOf(gpus), { enabled: true, listing: ['10de:2901'], exclude: [], include: [], allow_attach_all: true });
});
