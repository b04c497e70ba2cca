// scripts/record-gpu-sysfs.sh, the recorder an operator with a GPU host runs to give init's GPU
// probe a fixture (issue 19): what it records is what the probe reads, and nothing else.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { probeGpus } from '../../src/init/gpu-probe.ts';
import { defer } from '../helpers/cleanup.ts';

const exec = promisify(execFile);
const SCRIPT = join(import.meta.dirname, '../../scripts/record-gpu-sysfs.sh');
const FIXTURES = join(import.meta.dirname, '../fixtures/sysfs');

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'record-gpu-sysfs-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  return dir;
}

type Run = { code: number; stderr: string };

// Run the script with /bin/sh (dash on Debian: POSIX sh, no bashisms) in `cwd`.
async function record(cwd: string, args: string[]): Promise<Run> {
  try {
    const { stderr } = await exec('sh', [SCRIPT, ...args], { cwd });
    return { code: 0, stderr };
  } catch (err) {
    const e = err as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
}

// The tarball unpacked into a fresh directory.
async function unpack(t: TestContext, tarball: string): Promise<string> {
  const dir = await tempDir(t);
  await exec('tar', ['-xzf', tarball, '-C', dir]);
  return dir;
}

// Every file and link below `dir`, relative, sorted; a link as "path -> target".
async function listTree(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) out.push(...(await listTree(dir, rel)));
    else if (entry.isSymbolicLink()) out.push(`${rel} -> ${await readlink(join(dir, rel))}`);
    else out.push(rel);
  }
  return out.sort();
}

test('a recording of the hand-made GPU host gives the probe the same GPUs, drivers and slots', async (t) => {
  const out = join(await tempDir(t), 'host.tar.gz');
  const { code, stderr } = await record(tmpdir(), [out, join(FIXTURES, 'gpu-host')]);
  assert.equal(code, 0, stderr);
  const copy = await unpack(t, out);
  assert.deepEqual(await probeGpus(copy), await probeGpus(join(FIXTURES, 'gpu-host')));
});

test('only vendor, device, class and the driver link are taken, the link relative to the recorded tree', async (t) => {
  const out = join(await tempDir(t), 'h200.tar.gz');
  assert.equal((await record(tmpdir(), [out, join(FIXTURES, 'recorded/hgx-h200-cubecos-259')])).code, 0);
  const files = await listTree(await unpack(t, out));
  assert.equal(files[0], 'RECORDED');
  const device = (address: string, driver: string) => [
    `sys/bus/pci/devices/${address}/class`,
    `sys/bus/pci/devices/${address}/device`,
    `sys/bus/pci/devices/${address}/driver -> ../../../../bus/pci/drivers/${driver}`,
    `sys/bus/pci/devices/${address}/vendor`,
  ];
  assert.deepEqual(files.slice(1), [
    ...device('0000:05:00.0', 'nvidia-nvswitch'),
    ...device('0000:06:00.0', 'nvidia-nvswitch'),
    ...['18', '2a', '3a', '5d', '9a', 'ab', 'ba', 'db'].flatMap((bus) => device(`0000:${bus}:00.0`, 'nvidia')),
  ]);
});

test('on a kernel-style layout, where each devices/ entry links into sys/devices, the files are read through the link', async (t) => {
  const root = await tempDir(t);
  const real = join(root, 'sys/devices/pci0000:17/0000:17:01.0/0000:18:00.0');
  await mkdir(real, { recursive: true });
  await writeFile(join(real, 'vendor'), '0x10de\n');
  await writeFile(join(real, 'device'), '0x2335\n');
  await writeFile(join(real, 'class'), '0x030200\n');
  await writeFile(join(real, 'numa_node'), '0\n');
  await symlink('../../../../bus/pci/drivers/vfio-pci', join(real, 'driver'));
  await mkdir(join(root, 'sys/bus/pci/devices'), { recursive: true });
  await symlink('../../../devices/pci0000:17/0000:17:01.0/0000:18:00.0', join(root, 'sys/bus/pci/devices/0000:18:00.0'));

  const work = await tempDir(t);
  assert.equal((await record(work, ['relative.tar.gz', root])).code, 0, 'a relative OUTPUT is relative to where the script was run');
  const copy = await unpack(t, join(work, 'relative.tar.gz'));
  assert.equal(await readFile(join(copy, 'sys/bus/pci/devices/0000:18:00.0/class'), 'utf8'), '0x030200\n');
  assert.deepEqual(await probeGpus(copy), [{ kind: 'gpu', address: '0000:18:00.0', slot: '18:00.0', productId: '10de:2335', driver: 'vfio-pci' }]);
  assert.match(await readFile(join(copy, 'RECORDED'), 'utf8'), /^recorded: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n$/, 'no kernel line for a tree that is not this host');
});

test('names from sysfs are data, never shell: a driver named $(touch …) is recorded as written and runs nothing, a stray entry is skipped', async (t) => {
  const root = await tempDir(t);
  const devices = join(root, 'sys/bus/pci/devices');
  const gpu = join(devices, '0000:18:00.0');
  await mkdir(gpu, { recursive: true });
  await writeFile(join(gpu, 'vendor'), '0x10de\n');
  await writeFile(join(gpu, 'device'), '0x2335\n');
  await writeFile(join(gpu, 'class'), '0x030200\n');
  const hostile = '$(touch pwned) `touch pwned2`; touch pwned3';
  await symlink(`../../../../bus/pci/drivers/${hostile}`, join(gpu, 'driver'));
  await mkdir(join(devices, 'x; touch pwned4'));

  const work = await tempDir(t);
  const { code, stderr } = await record(work, ['out.tar.gz', root]);
  assert.equal(code, 0, stderr);
  assert.match(stderr, /skipping x; touch pwned4: not a PCI address/);
  const copy = await unpack(t, join(work, 'out.tar.gz'));
  assert.deepEqual(await readdir(join(copy, 'sys/bus/pci/devices')), ['0000:18:00.0']);
  assert.equal((await probeGpus(copy))[0]!.driver, hostile);
  assert.deepEqual((await readdir(work)).sort(), ['out.tar.gz'], 'no command in a name ran');
});

test('a wrong call is a usage error (64), a ROOT without sys/bus/pci/devices an error naming it (1), and neither leaves a file', async (t) => {
  const work = await tempDir(t);
  const none = await record(work, []);
  assert.equal(none.code, 64);
  assert.match(none.stderr, /^usage: record-gpu-sysfs\.sh OUTPUT\.tar\.gz \[ROOT\]\n$/);
  assert.equal((await record(work, ['a', 'b', 'c'])).code, 64);
  const missing = await record(work, ['out.tar.gz', join(work, 'nowhere')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nowhere\/sys\/bus\/pci\/devices: no such directory/);
  assert.deepEqual(await readdir(work), []);
});
