// Init step 1: check the host before anything is written. Every probe reads below `[init]
// sysroot`, so a test hands in a fake host; every finding is collected, so the operator fixes
// them all in one go instead of one per start.
import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import { describeError } from '../errors.ts';
import type { InitSection } from './config-schema.ts';
import type { PreflightProblem } from './errors.ts';
import { resolvePlatform, type Platform } from './platform.ts';

const TDX_HOST_DOCS = 'https://github.com/canonical/tdx (host setup: TDX in BIOS, TDX kernel, kvm_intel tdx=1)';
const SGX_DOCS = 'https://github.com/canonical/tdx (remote attestation: SGX in BIOS, SGX devices, DCAP)';
const DSTACK_DOCS = 'https://github.com/Dstack-TEE/dstack/blob/master/docs/deployment.md';
const DOCKER_DOCS = 'https://docs.docker.com/engine/install/';
const SYSTEMD_DOCS = 'https://www.freedesktop.org/software/systemd/man/latest/systemd.html (the system bus: dbus.socket)';
const SNP_HOST_DOCS = 'https://github.com/Dstack-TEE/dstack/blob/master/docs/amd-sev-snp.md (host requirements: SEV-SNP and RMP on in firmware and kernel, /dev/sev, a SNP-capable QEMU)';
const QCNL_DOCS = 'https://github.com/Dstack-TEE/dstack/blob/master/docs/tutorials/troubleshooting-kms-deployment.md';

// Where probes look: `/proc/cpuinfo` of the real host is `<sysroot>/proc/cpuinfo` here.
type Host = { path: (p: string) => string };

// Every problem the host has for the platform it resolves to (platform.ts), in a stable order;
// empty when init may proceed. SNP needs no SGX, Docker or DCAP config: those serve only the
// SGX key provider, which an SNP host does not run (upstream dstackup `resolve_key_provider`).
export async function findHostProblems(init: InitSection): Promise<PreflightProblem[]> {
  const host: Host = { path: (p) => join(init.sysroot, p) };
  const { platform } = await resolvePlatform(init);
  const tdx = platform === 'tdx';
  const groups = await Promise.all([
    probeTee(host, platform),
    tdx
      ? probeDevice(host, '/dev/kvm', { what: 'KVM is not available: /dev/kvm is missing (kvm_intel not loaded, or VT-x off in BIOS)', check: 'ls -l /dev/kvm; lsmod | grep kvm', docs: TDX_HOST_DOCS, label: 'no /dev/kvm' })
      : probeDevice(host, '/dev/kvm', { what: 'KVM is not available: /dev/kvm is missing (kvm_amd not loaded, or SVM off in BIOS)', check: 'ls -l /dev/kvm; lsmod | grep kvm', docs: SNP_HOST_DOCS, label: 'no /dev/kvm' }),
    tdx
      ? []
      : probeDevice(host, '/dev/sev', { what: 'the AMD secure processor is not available: /dev/sev is missing (SEV-SNP off in BIOS, or kvm_amd/ccp not loaded); SNP CVMs cannot launch without it', check: 'ls -l /dev/sev; dmesg | grep -e SEV-SNP -e RMP', docs: SNP_HOST_DOCS, label: 'no /dev/sev' }),
    ...(tdx ? sgxAndDockerProbes(host, init) : []),
    probeExecutable(host, init.vmm_bin, 'dstack-vmm', 'runs the CVMs', DSTACK_DOCS),
    probeExecutable(host, init.vmm_supervisor_bin, "the VMM's process supervisor", 'keeps each CVM\'s QEMU running', DSTACK_DOCS),
    probeQemu(host, init.qemu_path, platform),
    probeExecutable(host, init.bun_bin, 'Bun', 'runs auth-simple', DSTACK_DOCS),
    probeFile(host, init.auth_simple_script, { what: `auth-simple is missing: ${init.auth_simple_script} does not exist`, check: `ls -l ${init.auth_simple_script}`, docs: DSTACK_DOCS, label: 'no auth-simple' }),
    tdx && init.qcnl_conf !== ''
      ? probeFile(host, init.qcnl_conf, { what: `the DCAP quote-provider config ${init.qcnl_conf} is missing; the key provider container mounts it to reach a PCCS`, check: `cat ${init.qcnl_conf}`, docs: QCNL_DOCS, label: `no ${basename(init.qcnl_conf)}` })
      : [],
    checkNameClash(init),
  ]);
  return groups.flat();
}

// What the SGX key provider container needs: the SGX devices and a running Docker.
function sgxAndDockerProbes(host: Host, init: InitSection): Promise<PreflightProblem[]>[] {
  return [
    probeDevice(host, '/dev/sgx_enclave', { what: 'SGX is not available: /dev/sgx_enclave is missing (SGX off in BIOS, or a kernel without the in-tree SGX driver); the key provider needs it', check: 'ls -l /dev/sgx_enclave /dev/sgx_provision', docs: SGX_DOCS, label: 'no /dev/sgx_enclave' }),
    probeDevice(host, '/dev/sgx_provision', { what: 'SGX provisioning is not available: /dev/sgx_provision is missing; the key provider needs it to get an SGX quote', check: 'ls -l /dev/sgx_enclave /dev/sgx_provision', docs: SGX_DOCS, label: 'no /dev/sgx_provision' }),
    probeExecutable(host, init.docker_bin, 'Docker', 'runs the SGX key provider container', DOCKER_DOCS),
    probeFile(host, init.docker_socket, { what: `Docker is not running: ${init.docker_socket} is missing`, check: 'systemctl status docker; docker info', docs: DOCKER_DOCS, label: 'Docker not running' }),
  ];
}

// The problem when systemd cannot be reached: init starts the host's daemons as its units.
export function systemdUnreachable(err: unknown): PreflightProblem {
  // The error's first line: its own advice ("next: …") is what `check` says here.
  const reason = describeError(err).split('\n')[0];
  return {
    what: `systemd cannot be reached over D-Bus (${reason}); init starts dstack-vmm, dstack-auth-simple and the key provider as systemd units, so the system bus must be up`,
    check: 'systemctl is-system-running; busctl status; ls -l /run/dbus/system_bus_socket',
    docs: SYSTEMD_DOCS,
    label: 'systemd unreachable',
  };
}

// What the host must show for a platform's CVMs: the KVM module parameter that turns it on, the
// cpuinfo flag that says the CPU has it, and the operator's text for each way it can be missing.
type TeeProbe = { param: string; flag: string; check: string; docs: string; offInKvm: string; absent: string; labels: [string, string] };

// TDX is usable when KVM has it on; the cpuinfo flag only refines the message, because kernels
// older than the flag (and some vendor kernels) run TDX guests without it. The same holds for
// SEV-SNP (upstream docs/amd-sev-snp.md: kvm_amd's sev_snp parameter reads Y).
const TEE_PROBES: Record<Platform, TeeProbe> = {
  tdx: {
    param: '/sys/module/kvm_intel/parameters/tdx',
    flag: 'tdx_host_platform',
    check: 'grep -o -m1 tdx_host_platform /proc/cpuinfo; cat /sys/module/kvm_intel/parameters/tdx; dmesg | grep -i tdx',
    docs: TDX_HOST_DOCS,
    offInKvm: 'TDX is on in the CPU but off in KVM: /sys/module/kvm_intel/parameters/tdx is not Y (set `options kvm_intel tdx=1` in /etc/modprobe.d and reload kvm_intel)',
    absent: 'No TDX host support: /proc/cpuinfo has no tdx_host_platform flag and kvm_intel tdx is not Y (TDX off in BIOS, or a kernel without TDX host support)',
    labels: ['TDX off in KVM', 'no TDX'],
  },
  'amd-sev-snp': {
    param: '/sys/module/kvm_amd/parameters/sev_snp',
    flag: 'sev_snp',
    check: 'grep -o -m1 sev_snp /proc/cpuinfo; cat /sys/module/kvm_amd/parameters/sev_snp; dmesg | grep -e SEV-SNP -e RMP',
    docs: SNP_HOST_DOCS,
    offInKvm: 'SEV-SNP is on in the CPU but off in KVM: /sys/module/kvm_amd/parameters/sev_snp is not Y (a host kernel without SNP host support, or kvm_amd loaded with sev_snp=0)',
    absent: 'No SEV-SNP host support: /proc/cpuinfo has no sev_snp flag and kvm_amd sev_snp is not Y (SEV-SNP or the RMP off in BIOS, or a kernel without SNP host support)',
    labels: ['SEV-SNP off in KVM', 'no SEV-SNP'],
  },
};

async function probeTee(host: Host, platform: Platform): Promise<PreflightProblem[]> {
  const probe = TEE_PROBES[platform];
  const param = (await readText(host.path(probe.param)))?.trim();
  if (param === 'Y' || param === 'y' || param === '1') return [];
  const cpuinfo = (await readText(host.path('/proc/cpuinfo'))) ?? '';
  const flag = cpuinfo.split('\n').some((line) => line.startsWith('flags') && line.split(/\s+/).includes(probe.flag));
  return [{ what: flag ? probe.offInKvm : probe.absent, check: probe.check, docs: probe.docs, label: flag ? probe.labels[0] : probe.labels[1] }];
}

async function probeDevice(host: Host, device: string, problem: PreflightProblem): Promise<PreflightProblem[]> {
  return (await exists(host.path(device))) ? [] : [problem];
}

async function probeFile(host: Host, path: string, problem: PreflightProblem): Promise<PreflightProblem[]> {
  const info = await statOrUndefined(host.path(path));
  return info?.isFile() || info?.isSocket() ? [] : [problem];
}

async function probeExecutable(host: Host, path: string, name: string, role: string, docs: string): Promise<PreflightProblem[]> {
  const info = await statOrUndefined(host.path(path));
  if (info?.isFile() && (info.mode & 0o111) !== 0) return [];
  const state = info === undefined ? 'does not exist' : 'is not an executable file';
  return [{ what: `${name} (${role}) is missing: ${path} ${state}; install it there or set its path in supervisor.toml [init]`, check: `ls -l ${path}`, docs, label: `no ${name}` }];
}

// QEMU's object list is what says it can run a TDX or SNP guest; a binary that merely exists is
// not enough (Debian 12's QEMU 7.2 runs, and has neither tdx-guest nor sev-snp-guest).
const QEMU_TIMEOUT_MS = 10_000;
const QEMU_GUEST: Record<Platform, { object: string; name: string; docs: string }> = {
  tdx: { object: 'tdx-guest', name: 'TDX', docs: TDX_HOST_DOCS },
  'amd-sev-snp': { object: 'sev-snp-guest', name: 'SEV-SNP', docs: SNP_HOST_DOCS },
};

async function probeQemu(host: Host, path: string, platform: Platform): Promise<PreflightProblem[]> {
  const { object, name, docs } = QEMU_GUEST[platform];
  const missing = await probeExecutable(host, path, 'QEMU', `must be a ${name}-capable build`, docs);
  if (missing.length > 0) return missing;
  const check = `${path} -object help | grep ${object}`;
  const result = await execa(host.path(path), ['-object', 'help'], { reject: false, timeout: QEMU_TIMEOUT_MS, stdin: 'ignore' });
  if (result.failed) {
    const why = result.timedOut ? `no answer in ${QEMU_TIMEOUT_MS / 1000} s` : (result.stderr.trim().split('\n')[0] || `exit status ${result.exitCode ?? result.signal}`);
    return [{ what: `QEMU at ${path} does not run (\`${path} -object help\`: ${why}); install a ${name}-capable QEMU or set [init] qemu_path`, check, docs, label: 'QEMU does not run' }];
  }
  if (new RegExp(`^\\s*${object}\\b`, 'm').test(result.stdout)) return [];
  return [
    {
      what: `QEMU at ${path} cannot run a ${name} guest: its object list has no ${object} (a distribution QEMU such as Debian 12's 7.2 lacks it); install a ${name}-capable QEMU and set [init] qemu_path to it`,
      check,
      docs,
      label: `QEMU without ${name}`,
    },
  ];
}

// The VMM runs `[supervisor] exe` as its process supervisor; if that path were our own binary
// the VMM would start a second dstack-supervisor instead (docs/dstack.md §5.3 "Name clash").
function checkNameClash(init: InitSection): PreflightProblem[] {
  if (basename(init.vmm_supervisor_bin) !== 'dstack-supervisor') return [];
  return [
    {
      what: `[init] vmm_supervisor_bin = "${init.vmm_supervisor_bin}" names this service's own binary; point it at dstack's process supervisor (default /usr/libexec/dstack/supervisor)`,
      check: 'grep vmm_supervisor_bin /etc/dstack/supervisor.toml',
      docs: DSTACK_DOCS,
      label: 'vmm_supervisor_bin is this service',
    },
  ];
}

async function exists(path: string): Promise<boolean> {
  return (await statOrUndefined(path)) !== undefined;
}

async function statOrUndefined(path: string) {
  try {
    return await stat(path);
  } catch {
    return undefined;
  }
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}
