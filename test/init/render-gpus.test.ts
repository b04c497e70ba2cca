// Issue 19: init renders vmm.toml [cvm.gpu] for the GPUs its preflight found, and keeps an
// operator's edit of the table, as for every rendered key.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { configPaths, renderHostConfig, type RenderInputs } from '../../src/init/render.ts';
import { probeGpus, type NvidiaDevice } from '../../src/init/gpu-probe.ts';
import { getPath } from '../../src/init/merge.ts';
import { initIn, reboundRecording, tempDir } from './helpers.ts';

const HOST = join(import.meta.dirname, '../fixtures/sysfs/gpu-host');
const FOUND = { enabled: true, listing: ['10de:2330', '10de:2335'], exclude: ['5d:00.0'], include: [], allow_attach_all: false };

async function inputsIn(t: TestContext): Promise<RenderInputs> {
  const init = initIn(await tempDir(t));
  return { init, vmmUrl: 'unix:/var/run/dstack/vmm.sock', authConfigPath: join(init.config_dir, 'auth-config.json'), osImagePin: 'a'.repeat(64), platform: 'tdx', isPortFree: async () => true };
}

// The table as a plain object (smol-toml's have no prototype).
const gpuTable = async (inputs: RenderInputs) => ({ ...(getPath(parseToml(await readFile(configPaths(inputs.init, inputs.authConfigPath).vmmToml, 'utf8')), ['cvm', 'gpu']) as object) });

test('GPUs found: [cvm.gpu] is rendered for them, said once, recorded for the journal; a re-run writes nothing', async (t) => {
  const inputs = await inputsIn(t);
  const gpus = await probeGpus(HOST);
  const first = await renderHostConfig({ ...inputs, gpus });
  assert.deepEqual(await gpuTable(inputs), FOUND);
  assert.equal(first.gpuTable, JSON.stringify(FOUND, Object.keys(FOUND).sort()));
  assert.match(first.notes[0]!, /vmm\.toml: \[cvm\.gpu\] rendered for the GPUs found: /);
  const again = await renderHostConfig({ ...inputs, gpus, previousGpuTable: first.gpuTable! });
  assert.deepEqual([again.written, again.notes, again.gpuTable], [[], [], first.gpuTable]);
});

test('no GPU: the template\'s [cvm.gpu] (enabled = false), nothing to record; GPUs installed later are rendered over it', async (t) => {
  const inputs = await inputsIn(t);
  const none = await renderHostConfig({ ...inputs, gpus: [] });
  assert.deepEqual([await gpuTable(inputs), none.gpuTable, none.notes], [{ enabled: false }, undefined, []]);
  const later = await renderHostConfig({ ...inputs, gpus: await probeGpus(HOST) });
  assert.deepEqual(await gpuTable(inputs), FOUND);
  assert.deepEqual(later.written, [configPaths(inputs.init, inputs.authConfigPath).vmmToml]);
});

test('an operator\'s [cvm.gpu] is kept, with a note of what init would render; one GPU more changes only an untouched table', async (t) => {
  const inputs = await inputsIn(t);
  const gpus = await probeGpus(HOST);
  const first = await renderHostConfig({ ...inputs, gpus });
  const path = configPaths(inputs.init, inputs.authConfigPath).vmmToml;
  const text = await readFile(path, 'utf8');
  await writeFile(path, text.replace(/listing = \[[^\]]*\]/, 'listing = [ "10de:2335" ]'));
  const kept = await renderHostConfig({ ...inputs, gpus, previousGpuTable: first.gpuTable! });
  assert.deepEqual(((await gpuTable(inputs)) as { listing: string[] }).listing, ['10de:2335']);
  assert.deepEqual(kept.written, []);
  assert.match(kept.notes[0]!, /\[cvm\.gpu\] was edited by hand and is kept \(for the GPUs found init would render /);
  assert.equal(kept.gpuTable, first.gpuTable, 'the journal keeps what init itself rendered');
  // The nvidia-bound H100 moved to vfio-pci: the edited table still stays as the operator left it.
  const rebound: NvidiaDevice[] = gpus.map((g) => ({ ...g, driver: 'vfio-pci' }));
  await renderHostConfig({ ...inputs, gpus: rebound, previousGpuTable: first.gpuTable! });
  assert.deepEqual(((await gpuTable(inputs)) as { listing: string[] }).listing, ['10de:2335']);
});

// What init rendered for an HGX H200 board (test/fixtures/sysfs/recorded/hgx-h200-cubecos-259) with
// its GPUs on vfio-pci and its NVSwitches on nvidia-nvswitch while it counted only GPUs, as the
// journal holds it (keys sorted); and what it renders there now that NVSwitches count.
const BEFORE_NVSWITCHES = '{"allow_attach_all":true,"enabled":true,"exclude":[],"include":[],"listing":["10de:2335"]}';
const WITH_NVSWITCHES = '{"allow_attach_all":false,"enabled":true,"exclude":[],"include":[],"listing":["10de:2335"]}';
const HGX_GPUS = ['18', '2a', '3a', '5d', '9a', 'ab', 'ba', 'db'].map((bus) => `0000:${bus}:00.0`);

test('[cvm.gpu] init rendered before NVSwitches counted (allow_attach_all = true on a board whose NVSwitches QEMU cannot open) is brought up to date, with a note', async (t) => {
  const inputs = await inputsIn(t);
  const devices = await probeGpus(await reboundRecording(t, 'hgx-h200-cubecos-259', HGX_GPUS));
  const before = await renderHostConfig({ ...inputs, gpus: devices.filter((d) => d.productId === '10de:2335') });
  assert.equal(before.gpuTable, BEFORE_NVSWITCHES, 'set-up: the table as init rendered it then');
  const now = await renderHostConfig({ ...inputs, gpus: devices, previousGpuTable: BEFORE_NVSWITCHES });
  assert.deepEqual(await gpuTable(inputs), { enabled: true, listing: ['10de:2335'], exclude: [], include: [], allow_attach_all: false });
  assert.deepEqual(now.written, [configPaths(inputs.init, inputs.authConfigPath).vmmToml]);
  assert.deepEqual(now.notes, [`${configPaths(inputs.init, inputs.authConfigPath).vmmToml}: [cvm.gpu] rendered for the GPUs found: ${WITH_NVSWITCHES}`]);
  assert.equal(now.gpuTable, WITH_NVSWITCHES);
});

test('[cvm.gpu] init rendered before NVSwitches counted and the operator edited since is kept, with a note of what init would render', async (t) => {
  const inputs = await inputsIn(t);
  const devices = await probeGpus(await reboundRecording(t, 'hgx-h200-cubecos-259', HGX_GPUS));
  await renderHostConfig({ ...inputs, gpus: devices.filter((d) => d.productId === '10de:2335') });
  const path = configPaths(inputs.init, inputs.authConfigPath).vmmToml;
  await writeFile(path, (await readFile(path, 'utf8')).replace(/exclude = \[[^\]]*\]/, 'exclude = [ "db:00.0" ]'));
  const now = await renderHostConfig({ ...inputs, gpus: devices, previousGpuTable: BEFORE_NVSWITCHES });
  assert.deepEqual(await gpuTable(inputs), { enabled: true, listing: ['10de:2335'], exclude: ['db:00.0'], include: [], allow_attach_all: true });
  assert.deepEqual(now.written, []);
  assert.deepEqual(now.notes, [`${path}: [cvm.gpu] was edited by hand and is kept (for the GPUs found init would render ${WITH_NVSWITCHES})`]);
  assert.equal(now.gpuTable, BEFORE_NVSWITCHES, 'the journal keeps what init itself rendered');
});
