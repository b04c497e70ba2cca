// Issue 19, init end to end on a fake host with GPUs: the preflight names them and warns about one
// the host's driver holds, [cvm.gpu] is rendered and recorded, and the simulated VMM reading that
// vmm.toml offers exactly the usable one. A re-run writes nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readInitJournal } from '../../src/init/journal.ts';
import { listSimGpus, type SimGpu } from '../../src/sim/vm-gpus.ts';
import { parseVmmToml } from '../../src/sim/vmm-toml.ts';
import { startInitStage } from './stage.ts';

const GPUS: SimGpu[] = [
  { address: '0000:18:00.0', productId: '10de:2335', driver: 'vfio-pci' },
  { address: '0000:2a:00.0', productId: '10de:2335', driver: 'nvidia' },
];

test('init on a host with an H200 on vfio-pci and one on nvidia: named, warned about, [cvm.gpu] for the usable one', async (t) => {
  const stage = await startInitStage(t, { sysroot: { gpus: GPUS } });
  await stage.init();
  const said = stage.logs.map((l) => String(l.fields['msg']));
  assert.ok(said.includes('preflight: GPU 0000:18:00.0: H200 (10de:2335), bound to vfio-pci: dstack-vmm can give it to a CVM'), said.join('\n'));
  const gpuWarnings = stage.warnings().filter((w) => w.includes('GPU'));
  assert.equal(gpuWarnings.length, 1);
  assert.match(gpuWarnings[0]!, /^preflight: GPU 0000:2a:00\.0: H200 \(10de:2335\) is bound to nvidia, not vfio-pci, so QEMU cannot pass it to a CVM/);
  const path = join(stage.config.init.config_dir, 'vmm.toml');
  const settings = parseVmmToml(await readFile(path, 'utf8'), path);
  assert.deepEqual(settings.gpu, { enabled: true, listing: ['10de:2335'], include: [], exclude: ['2a:00.0'], allowAttachAll: false });
  assert.deepEqual(listSimGpus(GPUS, settings.gpu, new Set()).map((g) => [g.slot, g.is_free]), [['18:00.0', true]]);
  const journal = await readInitJournal(stage.config.state_dir);
  assert.match(String(journal.steps.render?.detail['gpu']), /"exclude":\["2a:00\.0"\]/);
  const again = await stage.init();
  assert.deepEqual(again.written, []);
});

test('init on a host whose GPUs are on vfio-pci and whose NVSwitch is not: the NVSwitch is a warning, and [cvm.gpu] does not allow "all"', async (t) => {
  const host: SimGpu[] = [
    { address: '0000:05:00.0', productId: '10de:22a3', driver: 'nvidia-nvswitch', kind: 'nvswitch' },
    { address: '0000:18:00.0', productId: '10de:2335', driver: 'vfio-pci' },
    { address: '0000:2a:00.0', productId: '10de:2335', driver: 'vfio-pci' },
  ];
  const stage = await startInitStage(t, { sysroot: { gpus: host } });
  await stage.init();
  const gpuWarnings = stage.warnings().filter((w) => w.includes('vfio-pci'));
  assert.equal(gpuWarnings.length, 1, gpuWarnings.join('\n'));
  assert.match(gpuWarnings[0]!, /^preflight: NVSwitch 0000:05:00\.0: H100 NVSwitch \(10de:22a3\) is bound to nvidia-nvswitch, not vfio-pci, so QEMU cannot pass it to a CVM and init does not allow attach mode "all"/);
  const path = join(stage.config.init.config_dir, 'vmm.toml');
  const settings = parseVmmToml(await readFile(path, 'utf8'), path);
  assert.deepEqual(settings.gpu, { enabled: true, listing: ['10de:2335'], include: [], exclude: [], allowAttachAll: false });
});
