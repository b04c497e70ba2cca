// Issue 15: a start that cannot succeed until the operator acts (a host that is not ready, a
// supervisor.toml that does not parse) says so one entry per problem, leaves the summary on
// STATUS= for `systemctl status`, and exits 78, which the unit lists in RestartPreventExitStatus=.
// Run as the real `dstack-supervisor run`, against a fake host with no system bus.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { InitSectionSchema } from '../../src/init/config-schema.ts';
import { buildFakeSysroot } from '../../src/sim/sysroot.ts';
import { defer } from '../helpers/cleanup.ts';
import { startReceiver } from '../notify/receiver.ts';

const BIN = join(import.meta.dirname, '../../bin/dstack-supervisor.mjs');
const UNIT = join(import.meta.dirname, '../../systemd/dstack-supervisor.service');

async function stage(t: TestContext) {
  const dir = await mkdtemp(join(tmpdir(), 'dstack-failed-start-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  const receiver = await startReceiver(join(dir, 'notify.sock'));
  defer(t, () => receiver.close());
  const init = InitSectionSchema.parse({ sysroot: join(dir, 'sysroot'), config_dir: join(dir, 'etc'), data_dir: join(dir, 'data'), run_dir: join(dir, 'run'), images_dir: join(dir, 'images') });
  const config = join(dir, 'supervisor.toml');
  await writeFile(config, [
    `apps_dir = "${join(dir, 'apps.d')}"`,
    `state_dir = "${join(dir, 'state')}"`,
    `[vmm]\nurl = "unix:${join(dir, 'vmm.sock')}"\ntoken_file = ""`,
    `[auth]\nconfig_path = "${join(dir, 'auth-config.json')}"`,
    `[init]\nenabled = true\nsysroot = "${init.sysroot}"\nconfig_dir = "${init.config_dir}"\ndata_dir = "${init.data_dir}"\nrun_dir = "${init.run_dir}"\nimages_dir = "${init.images_dir}"`,
  ].join('\n'));
  // The service's environment under systemd, with a system bus that is not there.
  const run = () =>
    execa(process.execPath, [BIN, 'run', '--config', config, '--log-format', 'json'], {
      reject: false,
      timeout: 60_000,
      env: { NOTIFY_SOCKET: join(dir, 'notify.sock'), DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${join(dir, 'no-bus')}`, DSTACK_SUPERVISOR_CONFIG: '' },
    });
  return { dir, init, config, receiver, run };
}

const lines = (stdout: string) => stdout.split('\n').filter((l) => l.startsWith('<')).map((l) => JSON.parse(l.slice(l.indexOf('>') + 1)) as Record<string, unknown>);

test('issue 15: a host that is not ready and has no system bus: one error entry per problem, the summary on STATUS=, exit 78, nothing written', { timeout: 90_000 }, async (t) => {
  const s = await stage(t);
  await buildFakeSysroot(s.init.sysroot, s.init, { sgx: false, qemuTdx: false });
  const result = await s.run();
  assert.equal(result.exitCode, 78, result.stderr);

  const errors = lines(result.stdout).filter((l) => l['level'] === 'error');
  const problems = errors.filter((l) => String(l['msg']).startsWith('preflight: '));
  const prefixes = [
    'preflight: SGX is not available: /dev/sgx_enclave is missing',
    'preflight: SGX provisioning is not available: /dev/sgx_provision is missing',
    `preflight: QEMU at ${s.init.qemu_path} cannot run a TDX guest`,
    'preflight: systemd cannot be reached over D-Bus (systemd: connecting to org.freedesktop.systemd1',
  ];
  assert.equal(problems.length, prefixes.length, JSON.stringify(problems.map((l) => l['msg'])));
  prefixes.forEach((prefix, i) => assert.ok(String(problems[i]!['msg']).startsWith(prefix), `${String(problems[i]!['msg'])}\n does not start with\n${prefix}`));
  for (const p of problems) {
    assert.equal(p['CODE'], 'INIT_PREFLIGHT');
    assert.ok(typeof p['CHECK'] === 'string' && p['CHECK'] !== '' && typeof p['DOCS'] === 'string', JSON.stringify(p));
    assert.doesNotMatch(String(p['msg']), /\n/, 'one problem, one line');
  }
  const summary = 'preflight failed: 4 problems (no /dev/sgx_enclave, no /dev/sgx_provision, QEMU without TDX, systemd unreachable)';
  assert.deepEqual(errors.slice(problems.length).map((l) => l['msg']), [`${summary}; nothing was changed. Fix them, then: systemctl restart dstack-supervisor`]);
  assert.deepEqual(await s.receiver.next(), [`STATUS=${summary}`]);
  assert.deepEqual((await readdir(s.dir)).sort(), ['notify.sock', 'state', 'supervisor.toml', 'sysroot'].sort(), 'no config rendered, no image fetched');
  assert.deepEqual(await readdir(join(s.dir, 'state')), [], 'the pid file is removed again');
});

test('issue 15: a supervisor.toml that does not parse exits 78 with the reason on STATUS=', { timeout: 60_000 }, async (t) => {
  const s = await stage(t);
  await writeFile(s.config, 'apps_dir = [\n');
  const result = await s.run();
  assert.equal(result.exitCode, 78, result.stderr);
  const [status] = await s.receiver.next();
  assert.match(status ?? '', new RegExp(`^STATUS=configuration invalid: ${s.config.replace(/[.]/g, '\\.')}`));
});

test('issue 15: the unit does not restart a start that exits 78, and restarts any other failure', async () => {
  const unit = await readFile(UNIT, 'utf8');
  assert.match(unit, /^RestartPreventExitStatus=78$/m);
  assert.match(unit, /^Restart=on-failure$/m);
});

test('issue 16: a KMS that init must not change or replace stops the start with 78 too; a KMS that is slow to boot exits 1 and is restarted', async () => {
  const { reportFailedStart } = await import('../../src/service/failed-start.ts');
  const { KmsError } = await import('../../src/init/kms.ts');
  const { createLogger } = await import('../../src/log/logger.ts');
  const log = createLogger({ level: 'fatal' });
  const statuses: string[] = [];
  const status = async (text: string) => void statuses.push(text);
  assert.equal(await reportFailedStart(new KmsError('INIT_KMS_LOST', 'init kms: gone', { vmId: 'v' }), log, status), 78);
  assert.equal(await reportFailedStart(new KmsError('INIT_KMS_FROZEN', 'init kms: changed', { vmId: 'v' }), log, status), 78);
  assert.equal(await reportFailedStart(new KmsError('INIT_KMS_TIMEOUT', 'init kms: slow', { vmId: 'v' }), log, status), 1);
  assert.deepEqual(statuses, ['failed to start: init kms: gone', 'failed to start: init kms: changed', 'failed to start: init kms: slow']);
});
