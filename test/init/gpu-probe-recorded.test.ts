// Issue 19's acceptance: the sysfs probe against trees built from listings real GPU hosts printed
// (test/fixtures/sysfs/recorded/README.md has each source). The expectations are read off those
// listings by hand, line by line, not taken from a run of the probe.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { probeGpus, reviewGpus } from '../../src/init/gpu-probe.ts';
import { gpuTableOf } from '../../src/init/gpu-config.ts';

const RECORDED = join(import.meta.dirname, '../fixtures/sysfs/recorded');

test('HGX H200 board (bigstack-oss/cubecos#259): the eight H200s on the host nvidia driver, not its NVSwitches', async () => {
  const gpus = await probeGpus(join(RECORDED, 'hgx-h200-cubecos-259'));
  assert.deepEqual(
    gpus.map((g) => [g.address, g.productId, g.driver ?? null]),
    ['18', '2a', '3a', '5d', '9a', 'ab', 'ba', 'db'].map((bus) => [`0000:${bus}:00.0`, '10de:2335', 'nvidia']),
    'the listing in address order; 05:00.0 and 06:00.0 are NVSwitches (Bridge [0680], 10de:22a3)',
  );
});

test('HGX H200 board on nvidia: each GPU is a warning saying how to bind it, and [cvm.gpu] is left as the template has it', async () => {
  const gpus = await probeGpus(join(RECORDED, 'hgx-h200-cubecos-259'));
  const { notes, warnings } = reviewGpus(gpus);
  assert.equal(warnings.length, 8);
  for (const [i, bus] of ['18', '2a', '3a', '5d', '9a', 'ab', 'ba', 'db'].entries()) {
    const address = `0000:${bus}:00.0`;
    assert.ok(warnings[i]!.startsWith(`GPU ${address}: H200 (10de:2335) is bound to nvidia, not vfio-pci, so QEMU cannot pass it to a CVM`), warnings[i]);
    assert.ok(warnings[i]!.includes(`\`echo ${address} > /sys/bus/pci/devices/${address}/driver/unbind\``), warnings[i]);
    assert.ok(warnings[i]!.includes('`vfio-pci.ids=10de:2335` on the kernel command line'), warnings[i]);
  }
  assert.equal(notes.length, 1, 'only the note on confidential-computing mode');
  assert.match(notes[0]!, /--gpu-bdf=0000:18:00\.0 --query-cc-mode/);
  assert.equal(gpuTableOf(gpus), undefined, 'no GPU a CVM can have');
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
