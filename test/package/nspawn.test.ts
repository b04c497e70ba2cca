// Issue 6: the .deb as an operator uses it. A Debian 12 root with no Node.js of its own boots
// under a real systemd (systemd-nspawn); the package is installed with apt, runs the supervisor
// against the simulated host, deploys a file dropped into /etc/dstack/apps.d, and is removed and
// purged. lintian checks the same .deb. Needs root and the tools .ci/run installs; elsewhere the
// tests report why they did not run.
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import { writeFakeGuestImage } from '../../src/sim/guest-image.ts';
import { readNodeFlags } from '../../src/node-flags.ts';
import { buildDeb, whyNotRunnable } from './build.ts';
import { bootWithDeb } from './boot.ts';
import { listTree, waitFor, type Container } from './container.ts';
import { ensureRootfs } from './rootfs.ts';

const BUILD_TOOLS = { 'dpkg-deb': 'dpkg', strip: 'binutils' };
const notRunNspawn = await whyNotRunnable({ ...BUILD_TOOLS, debootstrap: 'debootstrap', 'systemd-nspawn': 'systemd-container', nsenter: 'util-linux' });
const notRunBuild = await whyNotRunnable(BUILD_TOOLS);
const notRunLintian = await whyNotRunnable({ ...BUILD_TOOLS, lintian: 'lintian' });

// The configuration an operator would write for this host: no hardware, so the simulated one.
const SIM_CONFIG = '[init]\nenabled = false\n\n[sim]\nenabled = true\n';
const HELLO_APP = 'services:\n  web:\n    image: nginx:1.27-alpine\n    ports:\n      - "18080:80"\n';
const UNIT = 'dstack-supervisor.service';
// What apt and dpkg themselves change while a package comes and goes.
const VOLATILE = ['/var/log/', '/var/cache/', '/var/lib/apt/', '/var/lib/dpkg/'];

// One .deb for both tests, built on first use into a directory removed after the file.
let workDir: string | undefined;
let debBuilt: Promise<string> | undefined;
function packageDeb(): Promise<string> {
  debBuilt ??= (async () => {
    workDir = await mkdtemp(join(tmpdir(), 'dstack-package-'));
    return buildDeb(workDir);
  })();
  return debBuilt;
}
after(async () => {
  if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
});

test('the .deb carries program, runtime, units and conffiles, and no distribution nodejs', { skip: notRunBuild, timeout: 180_000 }, async () => {
  const deb = await packageDeb();
  const listing = (await execa('dpkg-deb', ['-c', deb])).stdout;
  const paths = new Set(listing.split('\n').map((line) => line.split(/\s+/)[5]?.replace(/^\./, '')));
  for (const path of [
    '/usr/bin/dstack-supervisor',
    '/usr/lib/dstack-supervisor/node',
    '/usr/lib/dstack-supervisor/dstack-supervisor.mjs',
    '/usr/lib/dstack-supervisor/node-flags',
    '/usr/lib/dstack-supervisor/proto/vmm_rpc.proto',
    '/usr/share/dstack-supervisor/templates/vmm.toml',
    '/lib/systemd/system/dstack-supervisor.service',
    '/lib/systemd/system/dstack-vmm.service',
    '/lib/systemd/system/dstack-auth-simple.service',
    '/lib/systemd/system/gramine-sealing-key-provider.service',
    '/etc/dstack/supervisor.toml',
    '/etc/dstack/apps.d/README',
    '/etc/dstack/gateway.d/README',
    '/usr/share/doc/dstack-supervisor/copyright',
    '/usr/share/doc/dstack-supervisor/changelog.gz',
    '/usr/share/doc/dstack-supervisor/operator-guide.md.gz',
    '/usr/share/man/man8/dstack-supervisor.8.gz',
  ]) {
    assert.ok(paths.has(path), `${path} is missing from the .deb:\n${listing}`);
  }
  assert.deepEqual([...paths].filter((p) => p?.includes('node_modules')), []);
  // The journal's socket (src/log/journal-socket.ts): a prebuilt addon beside the chunks.
  assert.ok([...paths].some((p) => /^\/usr\/lib\/dstack-supervisor\/chunks\/node-unix-socket\.linux-x64-gnu-\w+\.node$/.test(p ?? '')), listing);
  // docs/dstack.md §5.3 "Name clash": that path is the VMM's own process supervisor.
  assert.equal(paths.has('/usr/local/libexec/dstack/supervisor') || paths.has('/usr/libexec/dstack/supervisor'), false);
  const control = (await execa('dpkg-deb', ['-f', deb, 'Depends', 'Recommends', 'Architecture'])).stdout;
  assert.doesNotMatch(control, /nodejs/);
  // Issue 15: a distribution QEMU cannot run TDX, and pulled a desktop stack through Recommends.
  assert.doesNotMatch(control, /qemu/);
  assert.match(control, /^Architecture: amd64$/m);
  const conffiles = (await execa('dpkg-deb', ['--ctrl-tarfile', deb]).pipe('tar', ['-xO', './conffiles'])).stdout;
  assert.deepEqual(conffiles.split('\n').sort(), ['/etc/dstack/apps.d/README', '/etc/dstack/gateway.d/README', '/etc/dstack/supervisor.toml']);
});

test('lintian reports no errors on the .deb', { skip: notRunLintian, timeout: 180_000 }, async (t) => {
  const deb = await packageDeb();
  const { stdout, stderr } = await execa('lintian', ['--pedantic', deb], { reject: false });
  const tags = stdout.split('\n').filter((line) => /^[EWIPX]: /.test(line));
  for (const tag of tags.filter((line) => !line.startsWith('I: ') && !line.startsWith('P: '))) t.diagnostic(tag);
  assert.deepEqual(tags.filter((line) => line.startsWith('E: ')), [], stderr);
});

test('the cached Debian 12 root exists (debootstrap once, then reused)', { skip: notRunNspawn, timeout: 900_000 }, async (t) => {
  const root = await ensureRootfs((line) => t.diagnostic(line));
  assert.ok(existsSync(join(root, 'usr/lib/systemd/systemd')));
  assert.equal(existsSync(join(root, 'usr/bin/node')) || existsSync(join(root, 'usr/bin/nodejs')), false, 'the root must have no Node.js');
});

// Run in the container and insist on exit 0; returns stdout.
async function run(container: Container, argv: string[]): Promise<string> {
  const result = await container.exec(argv, { timeoutMs: 120_000 });
  assert.equal(result.exitCode, 0, `${argv.join(' ')} exited ${result.exitCode}:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

async function unitState(container: Container, verb: 'is-active' | 'is-enabled', unit = UNIT): Promise<string> {
  return (await container.exec(['systemctl', verb, unit])).stdout.trim();
}

type JournalEntry = Record<string, unknown> & { MESSAGE?: unknown; PRIORITY?: string; _TRANSPORT?: string };

// The unit's journal entries, those matching every FIELD=value given (journalctl's own matches).
async function unitJournal(container: Container, ...matches: string[]): Promise<JournalEntry[]> {
  const out = await run(container, ['journalctl', '-u', UNIT, ...matches, '-o', 'json', '--no-pager']);
  return out.split('\n').filter(Boolean).map((text) => JSON.parse(text) as JournalEntry);
}

async function appPhase(container: Container, app: string): Promise<string | undefined> {
  const result = await container.exec(['dstack-supervisor', 'status', '--json']);
  if (result.exitCode !== 0) return undefined;
  const { apps } = JSON.parse(result.stdout) as { apps: Array<{ app: string; phase: string }> };
  return apps.find((a) => a.app === app)?.phase;
}

// A booted Debian root of its own with the package's .deb in /root, stopped and removed when the test ends.
async function bootWithPackage(t: TestContext, prefix: string): Promise<{ deb: string; root: string; c: Container }> {
  const deb = await packageDeb();
  return { deb, ...(await bootWithDeb(t, prefix, deb)) };
}

test('the .deb installs, runs, deploys a dropped file, is removed and purged under real systemd', { skip: notRunNspawn, timeout: 240_000 }, async (t) => {
  const { deb, root, c } = await bootWithPackage(t, 'dstack-nspawn-');
  // What "no file left behind" compares with: the booted system before the package came.
  const before = await listTree(root);

  // The operator writes the configuration first; dpkg keeps it (--force-confold).
  await mkdir(join(root, 'etc/dstack'));
  await writeFile(join(root, 'etc/dstack/supervisor.toml'), SIM_CONFIG);
  await run(c, ['apt-get', 'install', '-y', '--no-install-recommends', '-o', 'Dpkg::Options::=--force-confold', `/root/${basename(deb)}`]);

  // Enabled and started by postinst; the host units are left to init.
  assert.equal(await unitState(c, 'is-enabled'), 'enabled');
  assert.equal(await unitState(c, 'is-enabled', 'dstack-vmm.service'), 'disabled');
  await waitFor(`${UNIT} to be active`, 30_000, async () => ((await unitState(c, 'is-active')) === 'active' ? true : undefined));
  const status = await run(c, ['systemctl', 'status', UNIT, '--no-pager']);
  assert.match(status, /^\s*Status: "[^"]*running \d+[^"]*"$/m, status);
  // Issue 15: the process names itself (Linux keeps 15 bytes), not Node's "MainThread".
  assert.match(status, /^\s*Main PID: \d+ \(dstack-supervis\)$/m, status);
  assert.equal((await run(c, ['systemd-analyze', 'verify', UNIT])).trim(), '');
  // The launcher starts Node with the flags of packaging/files/node-flags (issue 5's memory goal),
  // in the service's main process itself.
  const mainPid = (await run(c, ['systemctl', 'show', '-p', 'MainPID', '--value', UNIT])).trim();
  const argv = (await run(c, ['sh', '-c', `tr '\\0' '\\n' </proc/${mainPid}/cmdline`])).split('\n');
  assert.deepEqual(argv.slice(0, 1 + readNodeFlags().length), ['/usr/lib/dstack-supervisor/node', ...readNodeFlags()]);

  // Drop a file: it deploys. A misnamed one is refused with a warning.
  await writeFile(join(root, 'etc/dstack/apps.d/hello.yaml'), HELLO_APP, { mode: 0o644 });
  await writeFile(join(root, 'etc/dstack/apps.d/My_App.yml'), HELLO_APP, { mode: 0o644 });
  await waitFor('app hello to reach phase "running"', 60_000, async () => ((await appPhase(c, 'hello')) === 'running' ? true : undefined));
  await waitFor('STATUS= to count the running app', 15_000, async () => {
    const text = await run(c, ['systemctl', 'show', '-p', 'StatusText', '--value', UNIT]);
    return /running 1\b/.test(text) ? text : undefined;
  });

  // Issue 15: every entry is a sentence, never pino's JSON; APP, ACTION, FILE are journal fields
  // (`journalctl -u dstack-supervisor APP=hello`), sent natively, at the priority of their level.
  for (const entry of await unitJournal(c)) {
    const message = String(entry.MESSAGE);
    assert.doesNotMatch(message, /^<\d>/, 'journald must have consumed the <N> priority prefix');
    assert.doesNotMatch(message, /^\{/, `a JSON line in the journal: ${message}`);
  }
  const hello = await unitJournal(c, 'APP=hello');
  assert.ok(hello.length > 0 && hello.every((e) => e['APP'] === 'hello'), JSON.stringify(hello));
  const [deploy] = await unitJournal(c, 'APP=hello', 'ACTION=deploy');
  assert.ok(deploy, 'journalctl -u dstack-supervisor APP=hello ACTION=deploy finds the deploy');
  assert.match(String(deploy.MESSAGE), /^hello: deploy [0-9a-f]{12}: /);
  assert.doesNotMatch(String(deploy.MESSAGE), /\{/);
  assert.deepEqual([deploy.PRIORITY, deploy._TRANSPORT, deploy['SYSLOG_IDENTIFIER'], deploy['_SYSTEMD_UNIT']], ['6', 'journal', 'dstack-supervisor', UNIT]);
  assert.match(String(deploy['FILE']), /\/etc\/dstack\/apps\.d\/hello\.yaml$/);
  const [running] = await unitJournal(c, 'APP=hello', 'PHASE=running');
  assert.ok(running && running['HASH'] === deploy['TO'] && /^[0-9a-f-]{36}$/.test(String(running['VM'])), JSON.stringify(running));
  const warnings = await unitJournal(c, 'PRIORITY=4');
  assert.ok(warnings.some((e) => String(e['FILE']).endsWith('My_App.yml') && e['ACTION'] === 'refused'), 'a warning for My_App.yml');
  assert.match(await run(c, ['journalctl', '-u', UNIT, '-p', 'warning', '--no-pager', '-o', 'cat']), /My_App\.yml: not deployed/);

  // Issue 15: `systemctl reload` is a full resync (ExecReload= runs `resync --pid $MAINPID`), and
  // `dstack-supervisor resync` finds the service by its pid file; it keeps running either way.
  await run(c, ['systemctl', 'reload', UNIT]);
  const resyncs = async () => (await unitJournal(c, 'MESSAGE=SIGHUP: resyncing every app and VM now')).length;
  await waitFor('the reload in the journal', 15_000, async () => ((await resyncs()) === 1 ? true : undefined));
  assert.match(await run(c, ['dstack-supervisor', 'resync']), new RegExp(`^asked dstack-supervisor \\(pid ${mainPid}\\) for a full resync`));
  await waitFor('the resync in the journal', 15_000, async () => ((await resyncs()) === 2 ? true : undefined));
  assert.equal(await unitState(c, 'is-active'), 'active');
  assert.equal((await run(c, ['bash', '-o', 'pipefail', '-c', 'dstack-supervisor status | head -1'])).trim(), 'config: /etc/dstack/supervisor.toml');

  // apt remove: stopped, program gone, conffiles and the operator's files kept.
  await run(c, ['apt-get', 'remove', '-y', 'dstack-supervisor']);
  assert.notEqual(await unitState(c, 'is-active'), 'active');
  assert.equal((await run(c, ['dpkg-query', '-W', '-f=${db:Status-Abbrev}', 'dstack-supervisor'])).trim(), 'rc');
  assert.equal(await readFile(join(root, 'etc/dstack/supervisor.toml'), 'utf8'), SIM_CONFIG);
  assert.ok(existsSync(join(root, 'etc/dstack/apps.d/README')) && existsSync(join(root, 'etc/dstack/gateway.d/README')));
  assert.ok(existsSync(join(root, 'etc/dstack/apps.d/hello.yaml')));
  assert.equal(existsSync(join(root, 'usr/lib/dstack-supervisor')), false);

  // apt purge (after the operator removed their app files): nothing of the package is left, not
  // even the stand-in guest image a simulated host with init writes to images_dir (issue 15).
  await writeFakeGuestImage(join(root, 'var/lib/dstack/images'));
  await rm(join(root, 'etc/dstack/apps.d/hello.yaml'));
  await rm(join(root, 'etc/dstack/apps.d/My_App.yml'));
  await run(c, ['apt-get', 'purge', '-y', 'dstack-supervisor']);
  const afterPurge = await listTree(root);
  const changed = (a: Set<string>, b: Set<string>): string[] => [...a].filter((p) => !b.has(p) && !VOLATILE.some((v) => p.startsWith(v)));
  assert.deepEqual({ left: changed(afterPurge, before), lost: changed(before, afterPurge) }, { left: [], lost: [] });
});

// Issue 15: the package's own configuration on a host with no TDX, no SGX and no system bus (this
// container): init's preflight fails. The unit must end `failed`, not restart every RestartSec,
// with one journal entry per problem and the summary on its Status line.
test('a host that is not ready: the unit ends failed (exit 78, no restart), one journal entry per problem, the summary in systemctl status', { skip: notRunNspawn, timeout: 240_000 }, async (t) => {
  const { deb, c } = await bootWithPackage(t, 'dstack-nspawn-preflight-');
  await run(c, ['apt-get', 'install', '-y', '--no-install-recommends', `/root/${basename(deb)}`]);

  await waitFor(`${UNIT} to be failed`, 60_000, async () => ((await unitState(c, 'is-active')) === 'failed' ? true : undefined));
  const show = await run(c, ['systemctl', 'show', '-p', 'NRestarts', '-p', 'ExecMainStatus', '-p', 'Result', '-p', 'StatusText', UNIT]);
  assert.match(show, /^NRestarts=0$/m, show);
  assert.match(show, /^ExecMainStatus=78$/m, show);
  assert.match(show, /^Result=exit-code$/m, show);
  const summary = /^StatusText=(preflight failed: (\d+) problems? \(.+\))$/m.exec(show);
  assert.ok(summary, show);
  const count = Number(summary[2]);
  assert.ok(count >= 2, 'no SGX and more: several problems');
  const status = (await c.exec(['systemctl', 'status', UNIT, '--no-pager'])).stdout;
  assert.ok(status.includes(`Status: "${summary[1]}"`), status);

  const problems = (await unitJournal(c, 'CODE=INIT_PREFLIGHT')).filter((e) => String(e.MESSAGE).startsWith('preflight: '));
  assert.equal(problems.length, count, problems.map((e) => e.MESSAGE).join('\n'));
  for (const entry of problems) {
    assert.equal(entry.PRIORITY, '3');
    assert.equal(entry._TRANSPORT, 'journal');
    assert.ok(typeof entry['CHECK'] === 'string' && typeof entry['DOCS'] === 'string', JSON.stringify(entry));
    assert.doesNotMatch(String(entry.MESSAGE), /[{\n]/, 'one sentence per problem');
  }
  assert.ok(problems.some((e) => /\/dev\/sgx_enclave is missing/.test(String(e.MESSAGE))), 'the missing SGX device is one of them');
});
