// Issue 17 part 1: the `host` role's real path. The .deb that `npm run package` builds is
// installed by the role, on a Debian 12 root booted under a real systemd (systemd-nspawn, as
// test/package/nspawn.test.ts boots it), and the role starts the service and reads its status.
//
// How Ansible reaches the container: the real ansible-playbook runs on this machine as the
// controller, as an operator runs it, with the connection plugin community.docker.nsenter and
// ansible_nsenter_pid set to the container's PID 1. Every module then runs inside all of the
// container's namespaces (mount, PID, network, IPC, UTS), so `systemctl` talks to the container's
// systemd and apt installs into its root; files go in through `tee` on the same path. It is the
// one stock plugin that enters a booted systemd container: `chroot` would not reach its
// systemd (its /run is private to its mount namespace), ssh would need a server and a network in
// it, and `machinectl shell`/`systemd-run -M` need a systemd PID 1 here, which this machine does
// not have (docs/platform-notes.md §2). Running ansible-playbook inside the container with
// connection local would need Ansible in the root and would not exercise the copy of the .deb from
// the controller. The plugin is in Debian's `ansible` package (ansible-core alone lacks it),
// which .ci/run installs; the root has python3 and python3-apt (test/package/rootfs.ts).
//
// Needs root, debootstrap, systemd-nspawn, dpkg-deb, strip and ansible; elsewhere it says why it
// did not run, as the package tests do.
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import { parse as parseToml } from 'smol-toml';
import { buildDeb, whyNotRunnable } from '../package/build.ts';
import { bootWithDeb } from '../package/boot.ts';
import { waitFor, type Container } from '../package/container.ts';
import { defer } from '../helpers/cleanup.ts';
import { linkCollection } from './local-hosts.ts';

const CONNECTION = 'community.docker.nsenter';
const UNIT = 'dstack-supervisor.service';
// What the host role is given for a simulated host (as test/package/nspawn.test.ts configures one).
const SIM_HOST_CONFIG = { init: { enabled: false }, sim: { enabled: true } };

async function whyNoNsenterConnection(): Promise<string | false> {
  const found = await execa('ansible-doc', ['-t', 'connection', CONNECTION], { reject: false });
  return found.exitCode === 0 ? false : `not run: the ${CONNECTION} connection plugin is not installed; apt-get install --no-install-recommends ansible`;
}
const notRun =
  (await whyNotRunnable({ 'dpkg-deb': 'dpkg', strip: 'binutils', debootstrap: 'debootstrap', 'systemd-nspawn': 'systemd-container', nsenter: 'util-linux', 'ansible-playbook': 'ansible' })) ||
  (await whyNoNsenterConnection());

// The .deb both tests install, built on first use (bundle, then scripts/package.mjs) into a
// directory removed after the file; and the collection, linked where Ansible finds it.
let work: string | undefined;
let prepared: Promise<{ deb: string; collections: string }> | undefined;
function prepare(): Promise<{ deb: string; collections: string }> {
  prepared ??= (async () => {
    work = await mkdtemp(join(tmpdir(), 'dstack-host-role-'));
    const collections = await linkCollection(work);
    return { deb: await buildDeb(work), collections };
  })();
  return prepared;
}
after(async () => {
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

type Recap = { ok: number; changed: number; failed: number };
type Run = { code: number | undefined; out: string; recap: Recap | undefined };

// Run playbooks/host.yml against the container, one host `tdx-sim`, with these host vars.
async function hostPlaybook(t: TestContext, c: Container, vars: Record<string, unknown>): Promise<Run> {
  const { collections } = await prepare();
  const dir = await mkdtemp(join(tmpdir(), 'dstack-host-run-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  const inventory = join(dir, 'inventory.json');
  const hostVars = { ansible_connection: CONNECTION, ansible_nsenter_pid: c.leader, ansible_python_interpreter: '/usr/bin/python3', ...vars };
  await writeFile(inventory, JSON.stringify({ all: { children: { dstack: { hosts: { 'tdx-sim': hostVars }, vars: { dstack_become: false } } } } }));
  // A clean environment: the plugin hands the controller's to every command in the container.
  const result = await execa('ansible-playbook', ['-i', inventory, 'dstack.supervisor.host'], {
    reject: false,
    all: true,
    extendEnv: false,
    timeout: 300_000,
    env: {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: dir,
      LANG: 'C.UTF-8',
      ANSIBLE_COLLECTIONS_PATH: collections,
      ANSIBLE_LOCAL_TEMP: join(dir, 'local-tmp'),
      ANSIBLE_REMOTE_TMP: '/tmp/.ansible-tmp',
      ANSIBLE_NOCOLOR: '1',
      ANSIBLE_RETRY_FILES_ENABLED: '0',
    },
  });
  const m = /^tdx-sim\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)/m.exec(result.all);
  return { code: result.exitCode, out: result.all, recap: m ? { ok: Number(m[1]), changed: Number(m[2]), failed: Number(m[3]) } : undefined };
}

// Run in the container and insist on exit 0; returns stdout.
async function run(c: Container, argv: string[]): Promise<string> {
  const result = await c.exec(argv, { timeoutMs: 60_000 });
  assert.equal(result.exitCode, 0, `${argv.join(' ')} exited ${result.exitCode}:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

test('issue 17: the host role installs the .deb, writes only the keys given, starts the service and returns once it is ready; a re-run changes nothing', { skip: notRun, timeout: 600_000 }, async (t) => {
  const { deb } = await prepare();
  const { root, c } = await bootWithDeb(t, 'dstack-host-role-', deb);
  assert.equal((await c.exec(['dpkg-query', '-W', 'dstack-supervisor'])).exitCode, 1, 'not installed before the role runs');

  // host_deb: a path on the controller, copied to the host by the role.
  const first = await hostPlaybook(t, c, { host_deb: deb, host_config: SIM_HOST_CONFIG });
  assert.equal(first.code, 0, first.out);
  assert.equal(first.recap?.failed, 0, first.out);
  assert.match(first.out, /TASK \[dstack\.supervisor\.host : Install the \.deb\] \*+\nchanged: \[tdx-sim\]/, first.out);

  // As soon as the role is back, the status says ready, from the running service.
  const status = JSON.parse(await run(c, ['dstack-supervisor', 'status', '--json'])) as { config: { path: string }; supervisor: { ready: boolean; pid: number | null } };
  assert.equal(status.config.path, '/etc/dstack/supervisor.toml');
  assert.equal(status.supervisor.ready, true, JSON.stringify(status));
  assert.equal(typeof status.supervisor.pid, 'number', JSON.stringify(status));
  assert.equal((await run(c, ['systemctl', 'is-active', UNIT])).trim(), 'active');
  assert.equal((await run(c, ['systemctl', 'is-enabled', UNIT])).trim(), 'enabled');
  assert.match(await run(c, ['dpkg-query', '-W', '-f=${Version} ${db:Status-Abbrev}', 'dstack-supervisor']), /^\S+ ii $/);
  // Only the keys given: the package's annotated file is replaced by exactly these.
  const toml = await readFile(join(root, 'etc/dstack/supervisor.toml'), 'utf8');
  assert.deepEqual(JSON.parse(JSON.stringify(parseToml(toml))), SIM_HOST_CONFIG, toml);

  const again = await hostPlaybook(t, c, { host_deb: deb, host_config: SIM_HOST_CONFIG });
  assert.equal(again.code, 0, again.out);
  assert.deepEqual({ changed: again.recap?.changed, failed: again.recap?.failed }, { changed: 0, failed: 0 }, again.out);
  assert.equal(await readFile(join(root, 'etc/dstack/supervisor.toml'), 'utf8'), toml);
  assert.equal(JSON.parse(await run(c, ['dstack-supervisor', 'status', '--json'])).supervisor.pid, status.supervisor.pid, 'not restarted');
});

// The package's own configuration on this container (no TDX, no SGX): the preflight fails, the
// unit ends failed (exit 78), and the role's failure carries the problems the service logged.
test('issue 17: on a host that is not ready, the host role fails with the preflight problems as the message', { skip: notRun, timeout: 600_000 }, async (t) => {
  const { deb } = await prepare();
  const { c } = await bootWithDeb(t, 'dstack-host-role-bad-', deb);
  // host_deb: a URL, fetched by the host itself. The container has no network but its own
  // loopback, so the .deb is served from inside it (a unit of the container: it goes with it).
  const server = await run(c, ['systemd-run', '--unit=deb-server', '--property=WorkingDirectory=/root', 'python3', '-m', 'http.server', '--bind', '127.0.0.1', '8000']);
  const url = `http://127.0.0.1:8000/${basename(deb)}`;
  await waitFor(`the .deb served at ${url} (${server.trim()})`, 30_000, async () => {
    const probe = await c.exec(['python3', '-c', `import urllib.request; urllib.request.urlopen(${JSON.stringify(url)}).close()`]);
    return probe.exitCode === 0 ? true : undefined;
  });

  const failed = await hostPlaybook(t, c, { host_deb: url, host_wait_retries: 5, host_wait_delay: 1 });
  assert.notEqual(failed.code, 0, failed.out);
  assert.equal(failed.recap?.failed, 1, failed.out);
  assert.match(failed.out, /TASK \[dstack\.supervisor\.host : Install the \.deb\] \*+\nchanged: \[tdx-sim\]/, failed.out);
  const show = await run(c, ['systemctl', 'show', '-p', 'ActiveState', '-p', 'ExecMainStatus', '-p', 'StatusText', UNIT]);
  assert.match(show, /^ActiveState=failed$/m, show);
  assert.match(show, /^ExecMainStatus=78$/m, show);
  // The task's message: the unit's state and Status line, then every problem the preflight logged.
  // The last failure: the one the rescue reports (the start task's own failure comes first).
  const msg = [...failed.out.matchAll(/^fatal: \[tdx-sim\]: FAILED! => \{.*"msg": "(.*)"\}$/gm)].at(-1)?.[1];
  assert.ok(msg, failed.out);
  assert.match(failed.out, /^tdx-sim\s*:.*\brescued=1\b/m, failed.out);
  assert.match(msg, /^dstack-supervisor on tdx-sim is not ready \(unit dstack-supervisor failed, result exit-code: preflight failed: \d+ problems? \(/, failed.out);
  assert.match(msg, /; preflight: [^;]*\/dev\/sgx_enclave is missing/, failed.out);
  const count = Number(/^StatusText=preflight failed: (\d+) problem/m.exec(show)?.[1]);
  assert.equal([...msg.matchAll(/(?:^|; |\): )preflight: /g)].length, count, `one entry per problem in: ${msg}`);
});
