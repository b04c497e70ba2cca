import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findHostProblems } from '../../src/init/preflight.ts';
import { buildFakeSysroot } from '../../src/sim/sysroot.ts';
import { initIn, tempDir } from './helpers.ts';

test('an SNP host passes preflight with no SGX, no Docker and no DCAP config', async (t) => {
  const init = initIn(await tempDir(t));
  await buildFakeSysroot(init.sysroot, init, { snp: 'kvm', sgx: false, docker: false, qcnlConf: false, qemuTdx: false });
  assert.deepEqual(await findHostProblems(init), []);
  // Set explicitly, the same host passes too; as a TDX host it does not.
  assert.deepEqual(await findHostProblems({ ...init, platform: 'amd-sev-snp' }), []);
  const asTdx = (await findHostProblems({ ...init, platform: 'tdx' })).map((p) => p.label);
  for (const label of ['no TDX', 'no /dev/sgx_enclave', 'Docker not running', 'QEMU without TDX']) assert.ok(asTdx.includes(label), asTdx.join(', '));
});

test('SNP problems: no /dev/sev, kvm_amd sev_snp off, QEMU without sev-snp-guest, each with a check and a doc', async (t) => {
  const init = initIn(await tempDir(t), { platform: 'amd-sev-snp' });
  await buildFakeSysroot(init.sysroot, init, { snp: 'cpu-only', sev: false, qemuSnp: false });
  const problems = await findHostProblems(init);
  assert.deepEqual(problems.map((p) => p.label), ['SEV-SNP off in KVM', 'no /dev/sev', 'QEMU without SEV-SNP']);
  assert.match(problems[0]!.check, /\/sys\/module\/kvm_amd\/parameters\/sev_snp/);
  assert.match(problems[2]!.check, /-object help \| grep sev-snp-guest/);
  for (const p of problems) assert.match(p.docs, /amd-sev-snp\.md/);
});

test('platform = amd-sev-snp on an Intel host: no SEV-SNP, no /dev/sev, and no SGX complaint', async (t) => {
  const init = initIn(await tempDir(t), { platform: 'amd-sev-snp' });
  await buildFakeSysroot(init.sysroot, init, { qemuSnp: false });
  const labels = (await findHostProblems(init)).map((p) => p.label);
  assert.deepEqual(labels, ['no SEV-SNP', 'no /dev/sev', 'QEMU without SEV-SNP']);
});
