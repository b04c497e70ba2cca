import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { pathToFileURL } from 'node:url';
import { findProtoDir, loadVmmRoot } from '../../src/vmm/proto.ts';
import { defer } from '../helpers/cleanup.ts';

async function tempTree(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'vmm-proto-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('finds proto/ from the source tree', () => {
  assert.match(findProtoDir(), /\/proto$/);
  assert.ok(loadVmmRoot().lookupService('vmm.Vmm').methods.CreateVm);
});

test('finds proto/ above a bundle in dist/', async (t) => {
  const root = await tempTree(t);
  await mkdir(join(root, 'proto'));
  await mkdir(join(root, 'dist'));
  await writeFile(join(root, 'proto', 'vmm_rpc.proto'), '');
  assert.equal(findProtoDir(pathToFileURL(join(root, 'dist', 'cli.mjs')).href), join(root, 'proto'));
});

test('finds proto/ beside an installed bundle', async (t) => {
  const lib = join(await tempTree(t), 'usr', 'lib', 'dstack-supervisor');
  await mkdir(join(lib, 'proto'), { recursive: true });
  await writeFile(join(lib, 'proto', 'vmm_rpc.proto'), '');
  assert.equal(findProtoDir(pathToFileURL(join(lib, 'cli.mjs')).href), join(lib, 'proto'));
});

test('no proto/ anywhere up the tree is VMM_PROTO_MISSING', async (t) => {
  const root = await tempTree(t);
  assert.throws(() => findProtoDir(pathToFileURL(join(root, 'x.mjs')).href), { code: 'VMM_PROTO_MISSING' });
});
