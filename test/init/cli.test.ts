// The commands as an operator runs them: `init` and `destroy` as child processes against a
// simulated host, and the gate `run` passes before it watches apps.d.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { access, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'smol-toml';
import { prepareHost } from '../../src/init/prepare.ts';
import { createLogger } from '../../src/log/logger.ts';
import { writeFakeGuestImage } from '../../src/sim/guest-image.ts';
import { buildFakeSysroot, type SysrootFeatures } from '../../src/sim/sysroot.ts';
import { freePort } from '../sim/fixtures.ts';
import { initIn, tempDir } from './helpers.ts';
import { startInitStage } from './stage.ts';
import { withClosedStdout } from '../helpers/closed-stdout.ts';

const BIN = join(import.meta.dirname, '../../bin/dstack-supervisor.mjs');
const exec = promisify(execFile);
const exists = (path: string): Promise<boolean> => access(path).then(() => true, () => false);

type Result = { code: number; stdout: string; stderr: string };

async function cli(args: string[]): Promise<Result> {
  const env = { ...process.env };
  delete env['DSTACK_SUPERVISOR_CONFIG'];
  delete env['NOTIFY_SOCKET'];
  try {
    const { stdout, stderr } = await exec(process.execPath, [BIN, ...args], { env });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

// A supervisor.toml for a simulated host with every path in a temp dir.
async function simConfig(t: TestContext, features: SysrootFeatures = {}): Promise<{ root: string; file: string }> {
  const root = await tempDir(t, 'dstack-initcli-');
  const init = initIn(root, { kms_port: await freePort() });
  await buildFakeSysroot(init.sysroot, init, features);
  await writeFakeGuestImage(init.images_dir);
  const file = join(root, 'supervisor.toml');
  const config = {
    apps_dir: join(root, 'apps.d'),
    state_dir: join(root, 'state'),
    vmm: { token_file: '' },
    auth: { config_path: join(root, 'etc', 'auth-config.json') },
    init,
    sim: { enabled: true, dir: join(root, 'sim') },
  };
  await writeFile(file, stringify(config));
  return { root, file };
}

test('`init` without SGX in the sysroot exits 1 naming the device and writes nothing', async (t) => {
  const { root, file } = await simConfig(t, { sgx: false });
  const result = await cli(['init', '--config', file]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /\/dev\/sgx_enclave is missing/);
  assert.match(result.stderr, /nothing was changed/);
  for (const dir of ['etc', 'state', 'data/vm', 'run']) assert.equal(await exists(join(root, dir)), false, dir);
});

test('`init` on a simulated host exits 0 with the KMS; `destroy --purge` then exits 0', async (t) => {
  const { root, file } = await simConfig(t);
  const result = await cli(['init', '--config', file]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^init complete: KMS CVM [0-9a-f-]+ at https:\/\/10\.0\.2\.2:\d+; \d+ file\(s\) written, 3 unit\(s\) started$/m);
  assert.equal(await exists(join(root, 'etc', 'vmm.toml')), true);
  const destroyed = await cli(['destroy', '--purge', '--config', file]);
  assert.equal(destroyed.code, 0, destroyed.stderr);
  assert.match(destroyed.stdout, /^destroy complete: 0 app CVM\(s\) removed/m);
  assert.equal(await exists(join(root, 'etc', 'vmm.toml')), false);
});

test('issue 15: `init | head -1` is not cut short: with its reader gone it runs to the end and exits 0', async (t) => {
  const { root, file } = await simConfig(t);
  // init logs from its first step on; before, that first write's EPIPE ended it with a stack.
  const result = await withClosedStdout(['init', '--config', file], 0);
  assert.deepEqual({ code: result.code, signal: result.signal }, { code: 0, signal: null }, result.stderr);
  assert.doesNotMatch(result.stderr, /EPIPE/);
  assert.equal(await exists(join(root, 'etc', 'vmm.toml')), true, 'init rendered vmm.toml');
  assert.match(await readFile(join(root, 'state', 'init.json'), 'utf8'), /"kms"/, 'init recorded its last step');
});

test('`run` skips a finished init and takes [apps] kms_urls and kms_public_key from it, unless supervisor.toml sets them', async (t) => {
  const stage = await startInitStage(t);
  const { kms } = await stage.init();
  const log = createLogger({ level: 'error' });
  // No [sim]: were init run again, it would need the system bus, which this test never offers.
  const real = { ...stage.config, sim: { ...stage.config.sim, enabled: false } };
  const ready = await prepareHost({ ...real, vmm: { ...real.vmm, url: 'unix:/nonexistent/vmm.sock' } }, log);
  assert.deepEqual(ready.apps.kms_urls, [kms.url]);
  assert.equal(ready.apps.kms_public_key, kms.k256Pubkey);
  const own = await prepareHost({ ...real, apps: { ...real.apps, kms_urls: ['https://kms.example:9000'] } }, log);
  assert.deepEqual(own.apps.kms_urls, ['https://kms.example:9000']);
});
