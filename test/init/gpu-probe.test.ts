// Issue 19: init's preflight finds the NVIDIA GPUs in sysfs, says which a CVM can have, warns
// about the others with what to do, and renders [cvm.gpu] for them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { probeGpus, reviewGpus } from '../../src/init/gpu-probe.ts';
import { gpuTableOf } from '../../src/init/gpu-config.ts';
import { tempDir } from './helpers.ts';

const HOST = join(import.meta.dirname, '../fixtures/sysfs/gpu-host');

test('the probe reads vendor, device, class and driver of a GPU host: the NVIDIA display controllers and NVSwitches, with their driver', async () => {
  const gpus = await probeGpus(HOST);
  assert.deepEqual(
    gpus.map((g) => [g.kind, g.address, g.slot, g.productId, g.driver ?? null]),
    [
      ['nvswitch', '0000:05:00.0', '05:00.0', '10de:22a3', 'vfio-pci'],
      ['gpu', '0000:18:00.0', '18:00.0', '10de:2330', 'vfio-pci'],
      ['gpu', '0000:2a:00.0', '2a:00.0', '10de:2330', 'vfio-pci'],
      ['gpu', '0000:3a:00.0', '3a:00.0', '10de:2330', 'vfio-pci'],
      ['gpu', '0000:5d:00.0', '5d:00.0', '10de:2330', 'nvidia'],
      ['gpu', '0000:9a:00.0', '9a:00.0', '10de:2335', 'vfio-pci'],
      ['gpu', '0000:ab:00.0', 'ab:00.0', '10de:2335', 'vfio-pci'],
      ['gpu', '0000:ba:00.0', 'ba:00.0', '10de:2331', null],
      ['gpu', '0000:db:00.0', 'db:00.0', '10de:2335', 'vfio-pci'],
    ],
    'not the BMC VGA (not NVIDIA), the NIC or the host bridge (Intel)',
  );
});

test('the review names each GPU, then each NVSwitch; one on another driver or none is a warning saying how to bind it to vfio-pci', async () => {
  const { notes, warnings } = reviewGpus(await probeGpus(HOST));
  assert.equal(notes[0], 'GPU 0000:18:00.0: H100 SXM (10de:2330), bound to vfio-pci: dstack-vmm can give it to a CVM');
  assert.ok(notes.includes('GPU 0000:9a:00.0: H200 (10de:2335), bound to vfio-pci: dstack-vmm can give it to a CVM'));
  assert.equal(notes.at(-2), 'NVSwitch 0000:05:00.0: H100 NVSwitch (10de:22a3), bound to vfio-pci: dstack-vmm gives it to a CVM with attach mode "all"');
  assert.match(notes.at(-1)!, /^confidential-computing mode is a GPU setting sysfs does not show: check it with NVIDIA gpu-admin-tools \(`nvidia_gpu_tools\.py --gpu-bdf=0000:18:00\.0 --query-cc-mode`\)/);
  assert.deepEqual(warnings.length, 2);
  assert.equal(
    warnings[0],
    'GPU 0000:5d:00.0: H100 SXM (10de:2330) is bound to nvidia, not vfio-pci, so QEMU cannot pass it to a CVM and init leaves it out of [cvm.gpu]; ' +
      'bind it to vfio-pci (`echo vfio-pci > /sys/bus/pci/devices/0000:5d:00.0/driver_override`, `echo 0000:5d:00.0 > /sys/bus/pci/devices/0000:5d:00.0/driver/unbind`, ' +
      '`echo 0000:5d:00.0 > /sys/bus/pci/drivers_probe`; or `vfio-pci.ids=10de:2330` on the kernel command line), then run init again',
  );
  assert.match(warnings[1]!, /^GPU 0000:ba:00\.0: H100 PCIe \(10de:2331\) is bound to no driver, so QEMU cannot pass it/);
});

test('[cvm.gpu] for what was found: the vfio-pci product ids, the rest of those ids excluded, "all" only when every GPU and NVSwitch is on vfio-pci', async () => {
  assert.deepEqual(gpuTableOf(await probeGpus(HOST)), {
    enabled: true,
    listing: ['10de:2330', '10de:2335'],
    exclude: ['5d:00.0'],
    include: [],
    allow_attach_all: false,
  });
});

test('no GPU, or no PCI bus in sysfs at all, is not a problem: nothing found, nothing said, nothing rendered', async (t) => {
  const empty = await tempDir(t);
  assert.deepEqual(await probeGpus(empty), []);
  assert.deepEqual(reviewGpus([]), { notes: [], warnings: [] });
  assert.equal(gpuTableOf([]), undefined);
});
