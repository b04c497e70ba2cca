// Init step 1: check the host before anything is written. Every probe reads below `[init]
// sysroot`, so a test hands in a fake host; every finding is collected, so the operator fixes
// them all in one go instead of one per start.
import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { InitSection } from './config-schema.ts';
import { PreflightError, type PreflightProblem } from './errors.ts';

const TDX_HOST_DOCS = 'https://github.com/canonical/tdx (host setup: TDX in BIOS, TDX kernel, kvm_intel tdx=1)';
const SGX_DOCS = 'https://github.com/canonical/tdx (remote attestation: SGX in BIOS, SGX devices, DCAP)';
const DSTACK_DOCS = 'https://github.com/Dstack-TEE/dstack/blob/master/docs/deployment.md';
const DOCKER_DOCS = 'https://docs.docker.com/engine/install/';
const QCNL_DOCS = 'https://github.com/Dstack-TEE/dstack/blob/master/docs/tutorials/troubleshooting-kms-deployment.md';

// Where probes look: `/proc/cpuinfo` of the real host is `<sysroot>/proc/cpuinfo` here.
type Host = { path: (p: string) => string };

// Every problem the host has, in a stable order; empty when init may proceed.
export async function findHostProblems(init: InitSection): Promise<PreflightProblem[]> {
  const host: Host = { path: (p) => join(init.sysroot, p) };
  const groups = await Promise.all([
    probeTdx(host),
    probeDevice(host, '/dev/kvm', 'KVM is not available: /dev/kvm is missing (kvm_intel not loaded, or VT-x off in BIOS)', 'ls -l /dev/kvm; lsmod | grep kvm', TDX_HOST_DOCS),
    probeDevice(host, '/dev/sgx_enclave', 'SGX is not available: /dev/sgx_enclave is missing (SGX off in BIOS, or a kernel without the in-tree SGX driver); the key provider needs it', 'ls -l /dev/sgx_enclave /dev/sgx_provision', SGX_DOCS),
    probeDevice(host, '/dev/sgx_provision', 'SGX provisioning is not available: /dev/sgx_provision is missing; the key provider needs it to get an SGX quote', 'ls -l /dev/sgx_enclave /dev/sgx_provision', SGX_DOCS),
    probeExecutable(host, init.docker_bin, 'Docker', 'runs the SGX key provider container', DOCKER_DOCS),
    probeFile(host, init.docker_socket, `Docker is not running: ${init.docker_socket} is missing`, 'systemctl status docker; docker info', DOCKER_DOCS),
    probeExecutable(host, init.vmm_bin, 'dstack-vmm', 'runs the CVMs', DSTACK_DOCS),
    probeExecutable(host, init.vmm_supervisor_bin, "the VMM's process supervisor", 'keeps each CVM\'s QEMU running', DSTACK_DOCS),
    probeExecutable(host, init.qemu_path, 'QEMU', 'must be a TDX-capable build', TDX_HOST_DOCS),
    probeExecutable(host, init.bun_bin, 'Bun', 'runs auth-simple', DSTACK_DOCS),
    probeFile(host, init.auth_simple_script, `auth-simple is missing: ${init.auth_simple_script} does not exist`, `ls -l ${init.auth_simple_script}`, DSTACK_DOCS),
    init.qcnl_conf === ''
      ? []
      : probeFile(host, init.qcnl_conf, `the DCAP quote-provider config ${init.qcnl_conf} is missing; the key provider container mounts it to reach a PCCS`, `cat ${init.qcnl_conf}`, QCNL_DOCS),
    checkNameClash(init),
  ]);
  return groups.flat();
}

// Throw a PreflightError listing every problem, or return when the host is ready.
export async function assertHostReady(init: InitSection): Promise<void> {
  const problems = await findHostProblems(init);
  if (problems.length > 0) throw new PreflightError(problems, init.sysroot);
}

// TDX is usable when KVM has it on; the cpuinfo flag only refines the message, because kernels
// older than the flag (and some vendor kernels) run TDX guests without it.
async function probeTdx(host: Host): Promise<PreflightProblem[]> {
  const param = (await readText(host.path('/sys/module/kvm_intel/parameters/tdx')))?.trim();
  if (param === 'Y' || param === 'y' || param === '1') return [];
  const cpuinfo = (await readText(host.path('/proc/cpuinfo'))) ?? '';
  const flag = cpuinfo.split('\n').some((line) => line.startsWith('flags') && /\btdx_host_platform\b/.test(line));
  const check = 'grep -o -m1 tdx_host_platform /proc/cpuinfo; cat /sys/module/kvm_intel/parameters/tdx; dmesg | grep -i tdx';
  const what = flag
    ? 'TDX is on in the CPU but off in KVM: /sys/module/kvm_intel/parameters/tdx is not Y (set `options kvm_intel tdx=1` in /etc/modprobe.d and reload kvm_intel)'
    : 'No TDX host support: /proc/cpuinfo has no tdx_host_platform flag and kvm_intel tdx is not Y (TDX off in BIOS, or a kernel without TDX host support)';
  return [{ what, check, docs: TDX_HOST_DOCS }];
}

async function probeDevice(host: Host, device: string, what: string, check: string, docs: string): Promise<PreflightProblem[]> {
  return (await exists(host.path(device))) ? [] : [{ what, check, docs }];
}

async function probeFile(host: Host, path: string, what: string, check: string, docs: string): Promise<PreflightProblem[]> {
  const info = await statOrUndefined(host.path(path));
  return info?.isFile() || info?.isSocket() ? [] : [{ what, check, docs }];
}

async function probeExecutable(host: Host, path: string, name: string, role: string, docs: string): Promise<PreflightProblem[]> {
  const info = await statOrUndefined(host.path(path));
  if (info?.isFile() && (info.mode & 0o111) !== 0) return [];
  const state = info === undefined ? 'does not exist' : 'is not an executable file';
  return [{ what: `${name} (${role}) is missing: ${path} ${state}; install it there or set its path in supervisor.toml [init]`, check: `ls -l ${path}`, docs }];
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
