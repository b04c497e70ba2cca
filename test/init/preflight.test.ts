import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findHostProblems } from '../../src/init/preflight.ts';
import { PreflightError, summarizePreflight } from '../../src/init/errors.ts';
import { buildFakeSysroot } from '../../src/sim/sysroot.ts';
import { initIn, snapshotTree, tempDir } from './helpers.ts';

test('a complete fake host passes preflight', async (t) => {
  const root = await tempDir(t);
  const init = initIn(root);
  await buildFakeSysroot(init.sysroot, init);
  assert.deepEqual(await findHostProblems(init), []);
});

test('without SGX: PreflightError names both devices and nothing is written', async (t) => {
  const root = await tempDir(t);
  const init = initIn(root);
  await buildFakeSysroot(init.sysroot, init, { sgx: false });
  const before = await snapshotTree(root);

  const err = new PreflightError(await findHostProblems(init), init.sysroot);
  assert.equal(err.code, 'INIT_PREFLIGHT');
  assert.equal(err.problems.length, 2);
  assert.match(err.message, /\/dev\/sgx_enclave/);
  assert.match(err.message, /\/dev\/sgx_provision/);
  assert.match(err.message, /check: ls -l \/dev\/sgx_enclave/);
  assert.match(err.message, /nothing was changed/);
  assert.deepEqual(await snapshotTree(root), before);
});

test('an empty host reports every problem at once, each with a check and a doc link', async (t) => {
  const root = await tempDir(t);
  const init = initIn(root);
  await buildFakeSysroot(init.sysroot, init, { tdx: false, kvm: false, sgx: false, docker: false, binaries: false, qcnlConf: false });
  const problems = await findHostProblems(init);
  const text = problems.map((p) => p.what).join('\n');
  for (const needle of ['No TDX host support', '/dev/kvm', '/dev/sgx_enclave', '/dev/sgx_provision', init.docker_bin, init.docker_socket, init.vmm_bin, init.vmm_supervisor_bin, init.qemu_path, init.bun_bin, init.auth_simple_script, init.qcnl_conf]) {
    assert.ok(text.includes(needle), `no problem mentions ${needle}:\n${text}`);
  }
  assert.equal(problems.length, 12);
  for (const p of problems) {
    assert.notEqual(p.check, '');
    assert.match(p.docs, /^https:\/\//);
  }
});

test('TDX on the CPU but off in KVM says how to turn it on', async (t) => {
  const root = await tempDir(t);
  const init = initIn(root);
  await buildFakeSysroot(init.sysroot, init, { tdx: 'cpu-only' });
  const [problem, ...rest] = await findHostProblems(init);
  assert.equal(rest.length, 0);
  assert.match(problem?.what ?? '', /kvm_intel tdx=1/);
});

test('a binary that is not executable is a problem', async (t) => {
  const root = await tempDir(t);
  const init = initIn(root);
  await buildFakeSysroot(init.sysroot, init);
  await chmod(join(init.sysroot, init.vmm_bin), 0o644);
  const problems = await findHostProblems(init);
  assert.equal(problems.length, 1);
  assert.match(problems[0]?.what ?? '', /is not an executable file/);
});

test('vmm_supervisor_bin pointing at dstack-supervisor is refused (name clash)', async (t) => {
  const root = await tempDir(t);
  const init = initIn(root, { vmm_supervisor_bin: '/usr/bin/dstack-supervisor' });
  await buildFakeSysroot(init.sysroot, init);
  const problems = await findHostProblems(init);
  assert.equal(problems.length, 1);
  assert.match(problems[0]?.what ?? '', /this service's own binary/);
});

test('an empty qcnl_conf skips that probe', async (t) => {
  const root = await tempDir(t);
  const init = initIn(root, { qcnl_conf: '' });
  await buildFakeSysroot(init.sysroot, init, { qcnlConf: false });
  assert.deepEqual(await findHostProblems(init), []);
});

// Issue 15: Debian 12's QEMU 7.2 exists, runs, and cannot start a TDX guest.
test('a QEMU whose object list has no tdx-guest is a problem, with the check to run', async (t) => {
  const root = await tempDir(t);
  const init = initIn(root);
  await buildFakeSysroot(init.sysroot, init, { qemuTdx: false });
  const problems = await findHostProblems(init);
  assert.equal(problems.length, 1, JSON.stringify(problems));
  assert.match(problems[0]!.what, new RegExp(`^QEMU at ${init.qemu_path} cannot run a TDX guest: its object list has no tdx-guest`));
  assert.equal(problems[0]!.check, `${init.qemu_path} -object help | grep tdx-guest`);
  assert.equal(problems[0]!.label, 'QEMU without TDX');
});

test('a QEMU that fails to run is a problem that quotes its error', async (t) => {
  const root = await tempDir(t);
  const init = initIn(root);
  await buildFakeSysroot(init.sysroot, init);
  await writeFile(join(init.sysroot, init.qemu_path), '#!/bin/sh\necho "error while loading shared libraries: libslirp.so.0" >&2\nexit 127\n');
  const problems = await findHostProblems(init);
  assert.equal(problems.length, 1, JSON.stringify(problems));
  assert.match(problems[0]!.what, /^QEMU at \S+ does not run \(`\S+ -object help`: error while loading shared libraries: libslirp.so.0\)/);
});

test('the summary systemctl status shows names every problem in a few words', async (t) => {
  const root = await tempDir(t);
  const init = initIn(root);
  await buildFakeSysroot(init.sysroot, init, { sgx: false, qemuTdx: false });
  const problems = await findHostProblems(init);
  assert.equal(summarizePreflight(problems), 'preflight failed: 3 problems (no /dev/sgx_enclave, no /dev/sgx_provision, QEMU without TDX)');
  assert.equal(summarizePreflight(problems.slice(0, 1)), 'preflight failed: 1 problem (no /dev/sgx_enclave)');
});
