// A fake host for the init preflight: the files its probes read (cpuinfo, kvm_intel's tdx or
// kvm_amd's sev_snp parameter, the KVM, SGX and SEV device nodes, Docker, the dstack binaries) laid out under a
// directory that `[init] sysroot` points at. Device nodes are plain empty files, since the
// probes only test that a path exists; binaries are shell stubs that exit 0, QEMU's answering
// `-object help`.
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { InitSection } from '../init/config-schema.ts';
import type { SimGpu } from './vm-gpus.ts';

// What the fake host has; every feature defaults to present, except that the host is an Intel TDX
// one unless `snp` is set, and an SNP host (an AMD CPU) has no TDX and no SGX unless told so.
export type SysrootFeatures = {
  // 'kvm' = kvm_intel tdx=Y; 'cpu-only' = the cpuinfo flag but KVM has TDX off; false = none.
  tdx?: 'kvm' | 'cpu-only' | false;
  // An AMD SEV-SNP host: 'kvm' = the sev_snp cpuinfo flag and kvm_amd sev_snp=Y; 'cpu-only' = the
  // flag but KVM has SNP off; false (default) = an Intel host.
  snp?: 'kvm' | 'cpu-only' | false;
  // /dev/sev, the AMD secure processor (on an SNP host only).
  sev?: boolean;
  kvm?: boolean;
  sgx?: boolean;
  docker?: boolean;
  // The dstack binaries, QEMU, Bun and auth-simple at the paths `init` names.
  binaries?: boolean;
  // QEMU lists the tdx-guest object (a TDX-capable build); false: a distribution QEMU without it.
  qemuTdx?: boolean;
  // QEMU lists the sev-snp-guest object (a SNP-capable build).
  qemuSnp?: boolean;
  qcnlConf?: boolean;
  // NVIDIA GPUs and NVSwitches in sysfs (vendor, device, class and the driver link init's GPU
  // probe reads).
  gpus?: readonly SimGpu[];
};

const STUB = '#!/bin/sh\nexit 0\n';
// `qemu-system-x86_64 -object help`, abridged, as a build with or without TDX answers it.
const qemuStub = (tdx: boolean, snp: boolean): string =>
  `#!/bin/sh\n[ "$1" = -object ] && [ "$2" = help ] && printf 'List of user creatable objects:\\n  memory-backend-ram\\n${snp ? '  sev-snp-guest\\n' : ''}${tdx ? '  tdx-guest\\n' : ''}'\nexit 0\n`;
const CPU_FLAGS = 'fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov vmx smx sgx sgx_lc';
const AMD_CPU_FLAGS = 'fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov svm sme sev sev_es';

// The fake host `[sim]` builds for a `[init] platform`: an SNP host when that names SEV-SNP,
// else a TDX one (so `auto` detects TDX, as on most hosts).
export function platformFeatures(platform: InitSection['platform']): SysrootFeatures {
  return platform === 'amd-sev-snp' ? { snp: 'kvm' } : {};
}

// Populate `root` as a host with `features`, placing binaries where `init` expects them.
export async function buildFakeSysroot(root: string, init: InitSection, features: SysrootFeatures = {}): Promise<string> {
  const amd = features.snp !== undefined && features.snp !== false;
  const has = { tdx: amd ? false : ('kvm' as const), snp: false as const, sev: true, kvm: true, sgx: !amd, docker: true, binaries: true, qemuTdx: true, qemuSnp: true, qcnlConf: true, ...features };
  const put = async (path: string, content: string, mode = 0o644): Promise<void> => {
    const full = join(root, path);
    await mkdir(dirname(full), { recursive: true });
    await writeFile(full, content, { mode });
  };
  const flags = amd ? `${AMD_CPU_FLAGS}${has.snp === false ? '' : ' sev_snp'}` : CPU_FLAGS;
  const tdxFlag = has.tdx === false ? '' : ' tdx_host_platform';
  await put('/proc/cpuinfo', `processor\t: 0\nvendor_id\t: ${amd ? 'AuthenticAMD' : 'GenuineIntel'}\nflags\t\t: ${flags}${tdxFlag}\n\n`);
  if (has.kvm) {
    await put('/dev/kvm', '');
    if (amd) await put('/sys/module/kvm_amd/parameters/sev_snp', has.snp === 'kvm' ? 'Y\n' : 'N\n');
    else await put('/sys/module/kvm_intel/parameters/tdx', has.tdx === 'kvm' ? 'Y\n' : 'N\n');
  }
  if (amd && has.sev) await put('/dev/sev', '');
  if (has.sgx) {
    await put('/dev/sgx_enclave', '');
    await put('/dev/sgx_provision', '');
  }
  if (has.docker) {
    await put(init.docker_bin, STUB, 0o755);
    await put(init.docker_socket, '');
  }
  if (has.binaries) {
    for (const bin of [init.vmm_bin, init.vmm_supervisor_bin, init.bun_bin]) await put(bin, STUB, 0o755);
    await put(init.qemu_path, qemuStub(has.qemuTdx, has.qemuSnp), 0o755);
    await put(init.auth_simple_script, '// auth-simple stand-in\n');
  }
  if (has.qcnlConf && init.qcnl_conf !== '') await put(init.qcnl_conf, '{"pccs_url": "https://pccs.example/sgx/certification/v4/"}\n');
  // Rebuilt whole each time, so a GPU taken out of the configuration leaves the fake host too.
  await rm(join(root, '/sys/bus/pci'), { recursive: true, force: true });
  for (const gpu of has.gpus ?? []) {
    const dir = `/sys/bus/pci/devices/${gpu.address}`;
    await put(`${dir}/vendor`, '0x10de\n');
    await put(`${dir}/device`, `0x${gpu.productId.slice(5)}\n`);
    // 3D controller; an NVSwitch is a bridge of class 0x0680, as nvidia-nvswitch logs it.
    await put(`${dir}/class`, gpu.kind === 'nvswitch' ? '0x068000\n' : '0x030200\n');
    if (gpu.driver !== '') await symlink(`../../../../bus/pci/drivers/${gpu.driver}`, join(root, dir, 'driver'));
  }
  return root;
}
