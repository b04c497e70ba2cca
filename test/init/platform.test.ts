import { test } from 'node:test';
import assert from 'node:assert/strict';
import { platformFromCpuinfo, resolvePlatform } from '../../src/init/platform.ts';
import { buildFakeSysroot } from '../../src/sim/sysroot.ts';
import { initIn, tempDir } from './helpers.ts';

const cpuinfo = (flags: string): string => `processor\t: 0\nvendor_id\t: X\nflags\t\t: fpu vme ${flags}\n\nprocessor\t: 1\nflags\t\t: fpu vme ${flags}\n`;

test('platformFromCpuinfo: sev_snp, tdx_host_platform, both (SNP wins, as upstream), neither', () => {
  const table: [string, string | undefined][] = [
    ['svm sev sev_es sev_snp', 'amd-sev-snp'],
    ['vmx sgx tdx_host_platform', 'tdx'],
    ['tdx_host_platform sev_snp', 'amd-sev-snp'],
    ['vmx sgx', undefined],
    // Whole flags only: sev and sev_es are not sev_snp, and a flag outside a `flags` line does not count.
    ['svm sev sev_es sev_snp_x', undefined],
  ];
  for (const [flags, want] of table) assert.equal(platformFromCpuinfo(cpuinfo(flags)), want, flags);
  assert.equal(platformFromCpuinfo('model name\t: sev_snp tdx_host_platform\n'), undefined);
  assert.equal(platformFromCpuinfo(''), undefined);
});

test('resolvePlatform: auto reads the sysroot cpuinfo; neither flag or no cpuinfo falls back to TDX; a set value wins', async (t) => {
  const snp = initIn(await tempDir(t));
  await buildFakeSysroot(snp.sysroot, snp, { snp: 'kvm' });
  assert.deepEqual(await resolvePlatform(snp), { platform: 'amd-sev-snp', how: 'detected' });
  // The flag alone decides, as upstream: KVM having SNP off is the preflight's business.
  const cpuOnly = initIn(await tempDir(t));
  await buildFakeSysroot(cpuOnly.sysroot, cpuOnly, { snp: 'cpu-only' });
  assert.deepEqual(await resolvePlatform(cpuOnly), { platform: 'amd-sev-snp', how: 'detected' });

  const tdx = initIn(await tempDir(t));
  await buildFakeSysroot(tdx.sysroot, tdx);
  assert.deepEqual(await resolvePlatform(tdx), { platform: 'tdx', how: 'detected' });
  assert.deepEqual(await resolvePlatform({ ...tdx, platform: 'amd-sev-snp' }), { platform: 'amd-sev-snp', how: 'configured' });

  const neither = initIn(await tempDir(t));
  await buildFakeSysroot(neither.sysroot, neither, { tdx: false });
  assert.deepEqual(await resolvePlatform(neither), { platform: 'tdx', how: 'fallback' });
  const empty = initIn(await tempDir(t));
  assert.deepEqual(await resolvePlatform(empty), { platform: 'tdx', how: 'fallback' });
  assert.deepEqual(await resolvePlatform({ ...snp, platform: 'tdx' }), { platform: 'tdx', how: 'configured' });
});
