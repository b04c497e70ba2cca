// `systemd-analyze verify` on every unit in systemd/. It exits 0 on some mistakes (an unknown
// key is only a warning), so any output at all fails the test (docs/platform-notes.md §2).
//
// The units name binaries that do not exist on a build machine (/usr/libexec/dstack/dstack-vmm,
// /usr/bin/docker ...), and verify checks that each is executable. So verify runs with --root on
// a temp tree holding: the host's own unit directory (for sysinit.target and friends), stub
// executables at the paths our ExecStart= lines name, and, through SYSTEMD_UNIT_PATH (which
// --root resolves inside the tree), stub units for the outside dependencies and our units.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, cp, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { tempDir } from './helpers.ts';

const UNITS_DIR = fileURLToPath(new URL('../../systemd/', import.meta.url));
const EXTERNAL_UNITS = ['docker.service'];

type Verdict = { exitCode: number | undefined; output: string };

async function unitNames(): Promise<string[]> {
  return (await readdir(UNITS_DIR)).filter((name) => name.endsWith('.service')).sort();
}

// The executable of every Exec*= line, with systemd's prefix characters (-, @, +, !, :) removed.
function executablesOf(unitText: string): string[] {
  return [...unitText.matchAll(/^Exec\w+=[-@+!:]*(\S+)/gm)].flatMap((m) => (m[1] === undefined ? [] : [m[1]]));
}

// The verify tree: host units, stub dependencies, our units and their stub executables, plus
// `extra` units (whose binaries are not stubbed).
async function buildRoot(t: TestContext, extra: Record<string, string> = {}): Promise<string> {
  const root = await tempDir(t, 'dstack-units-');
  const hostUnits = ['/usr/lib/systemd/system', '/lib/systemd/system'].find((d) => existsSync(join(d, 'sysinit.target')));
  assert.ok(hostUnits, 'no systemd unit directory with sysinit.target on this machine');
  await cp(hostUnits, join(root, 'usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
  await mkdir(join(root, 'stubs'));
  for (const name of EXTERNAL_UNITS) await writeFile(join(root, 'stubs', name), '[Unit]\nDescription=stub\n[Service]\nExecStart=/bin/true\n');
  await mkdir(join(root, 'units'));
  const texts: string[] = [];
  for (const name of await unitNames()) {
    const text = await readFile(join(UNITS_DIR, name), 'utf8');
    texts.push(text);
    await writeFile(join(root, 'units', name), text);
  }
  for (const [name, text] of Object.entries(extra)) await writeFile(join(root, 'units', name), text);
  for (const exe of new Set(texts.flatMap(executablesOf))) {
    const path = join(root, exe);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, '#!/bin/sh\nexit 0\n');
    await chmod(path, 0o755);
  }
  return root;
}

async function verify(root: string, unit: string): Promise<Verdict> {
  const result = await execa('systemd-analyze', ['verify', `--root=${root}`, unit], {
    env: { SYSTEMD_UNIT_PATH: '/stubs:/units:', SYSTEMD_LOG_COLOR: '0' },
    reject: false,
    all: true,
  });
  return { exitCode: result.exitCode, output: (result.all ?? '').trim() };
}

test('every unit in systemd/ passes systemd-analyze verify with no output at all', async (t) => {
  const root = await buildRoot(t);
  const names = await unitNames();
  assert.deepEqual(names, ['dstack-auth-simple.service', 'dstack-supervisor.service', 'dstack-vmm.service', 'gramine-sealing-key-provider.service']);
  for (const name of names) {
    const verdict = await verify(root, name);
    assert.deepEqual(verdict, { exitCode: 0, output: '' }, `${name}:\n${verdict.output}`);
  }
});

test('the harness catches what verify only warns about, and a missing binary', async (t) => {
  const root = await buildRoot(t, {
    'typo.service': '[Unit]\nDescription=typo\n[Service]\nExecStart=/usr/bin/dstack-supervisor run\nRestartt=always\n',
    'nobinary.service': '[Unit]\nDescription=no binary\n[Service]\nExecStart=/usr/bin/not-there\n',
  });
  const warned = await verify(root, 'typo.service');
  assert.equal(warned.exitCode, 0);
  assert.match(warned.output, /Unknown key 'Restartt'/);
  const missing = await verify(root, 'nobinary.service');
  assert.notEqual(missing.exitCode, 0);
  assert.match(missing.output, /not-there/);
});

test('unit wiring: ordering, restart policy, loopback-only auth-simple, notify supervisor', async () => {
  const unit = async (name: string): Promise<string> => readFile(join(UNITS_DIR, name), 'utf8');
  const supervisor = await unit('dstack-supervisor.service');
  assert.match(supervisor, /^Type=notify$/m);
  assert.match(supervisor, /^NotifyAccess=main$/m);
  assert.match(supervisor, /^Restart=on-failure$/m);
  assert.match(supervisor, /^ExecStart=\/usr\/bin\/dstack-supervisor run$/m);
  // issue 15: `systemctl reload` is a resync now, through the program (no /bin/kill on minbase).
  assert.match(supervisor, /^ExecReload=\/usr\/bin\/dstack-supervisor resync --pid \$MAINPID$/m);
  assert.match(supervisor, /^ProtectSystem=strict$/m);
  assert.match(supervisor, /^ReadWritePaths=\/etc\/dstack \/var\/lib\/dstack \/run\/dstack$/m);
  for (const dep of ['dstack-vmm.service', 'dstack-auth-simple.service', 'gramine-sealing-key-provider.service']) {
    assert.match(supervisor, new RegExp(`^After=.*${dep}`, 'm'));
    assert.match(supervisor, new RegExp(`^Wants=.*${dep}`, 'm'));
  }

  const vmm = await unit('dstack-vmm.service');
  assert.match(vmm, /^After=.*dstack-auth-simple\.service.*gramine-sealing-key-provider\.service/m);
  // Requires= would let an auth-simple restart restart the VMM, killing every CVM.
  assert.doesNotMatch(vmm, /^Requires=/m);
  assert.match(vmm, /^ExecStart=\/usr\/libexec\/dstack\/dstack-vmm -c \/etc\/dstack\/vmm\.toml$/m);

  const auth = await unit('dstack-auth-simple.service');
  assert.match(auth, /^IPAddressDeny=any$/m);
  assert.match(auth, /^IPAddressAllow=localhost$/m);
  assert.match(auth, /^EnvironmentFile=-\/etc\/dstack\/auth-simple\.env$/m);

  const kp = await unit('gramine-sealing-key-provider.service');
  assert.match(kp, /^Requires=docker\.service$/m);
  assert.match(kp, /^After=docker\.service/m);
  assert.match(kp, /--publish 127\.0\.0\.1:\$\{KEY_PROVIDER_PORT\}:3443/);
  for (const text of [vmm, auth, kp]) assert.match(text, /^Restart=always$/m);
});
