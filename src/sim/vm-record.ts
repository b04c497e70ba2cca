// One simulated VM as the VMM holds it — manifest, started flag, process state, guest reports —
// and how it is shown in Status/GetInfo (docs/dstack.md §2.3).
import type { GuestEvent, VmConfiguration, VmInfo } from '../vmm/messages.ts';
import type { HostPort } from './vm-rules.ts';

// VmInfo.status values.
export type VmStatus = 'running' | 'exited' | 'stopping' | 'stopped' | 'removing';

// A VM's full simulated state. `config` is the manifest view (app id set, ports resolved,
// compose as last written); `launchedPorts` are the forwards QEMU got at launch and
// `launchedCompose` / `launchedEnv` the compose and encrypted_env the guest booted with, which
// UpdateVm does not change until the next start.
export type SimVm = {
  id: string;
  appId: string;
  createdAt: number;
  config: VmConfiguration;
  // The NVSwitches (lspci slots) attach mode "all" took besides `config.gpus` (vm-gpus.ts).
  bridges: string[];
  ports: HostPort[];
  started: boolean;
  running: boolean;
  removing: boolean;
  launchedPorts: HostPort[];
  // The GPUs and NVSwitches (sysfs addresses) QEMU opened at launch; none while the process is down.
  launchedGpus: string[];
  launchedCompose: string;
  launchedEnv: string;
  launchedAt: number | undefined;
  exitedAt: number | undefined;
  bootProgress: string;
  bootError: string;
  shutdownProgress: string;
  instanceId: string | undefined;
  // Persisted seed of a reusable disk (KMS or local key provider); none means a fresh disk.
  instanceSeed: string | undefined;
  events: GuestEvent[];
  // Names of the env variables the guest opened from encrypted_env at its last boot.
  envNames: string[];
  // Bumped whenever the process stops, so callbacks of an older boot know to do nothing.
  generation: number;
};

// A freshly created VM: nothing launched, nothing reported yet.
export function newVmRecord(fields: Pick<SimVm, 'id' | 'appId' | 'createdAt' | 'config' | 'bridges' | 'ports' | 'started'>): SimVm {
  return {
    ...fields,
    running: false,
    removing: false,
    launchedPorts: [],
    launchedGpus: [],
    launchedCompose: '',
    launchedEnv: '',
    launchedAt: undefined,
    exitedAt: undefined,
    bootProgress: '',
    bootError: '',
    shutdownProgress: '',
    instanceId: undefined,
    instanceSeed: undefined,
    events: [],
    envNames: [],
    generation: 0,
  };
}

// The status table of docs/dstack.md §2.3: removing wins, then started × process running.
export function statusOf(vm: SimVm): VmStatus {
  if (vm.removing) return 'removing';
  if (vm.started) return vm.running ? 'running' : 'exited';
  return vm.running ? 'stopping' : 'stopped';
}

// Append to the VM's event ring buffer, keeping the newest `max` entries.
export function pushEvent(vm: SimVm, event: string, body: string, now: number, max: number): void {
  vm.events.push({ event, body, timestamp: now });
  if (vm.events.length > max) vm.events.splice(0, vm.events.length - max);
}

// The VmInfo wire object; `brief` leaves out the configuration as Status(brief=true) does.
export function renderVmInfo(vm: SimVm, now: number, brief: boolean, imageVersion: string): VmInfo {
  const info: VmInfo = {
    id: vm.id,
    name: vm.config.name,
    status: statusOf(vm),
    uptime: vm.running && vm.launchedAt !== undefined ? formatUptime(now - vm.launchedAt) : '',
    app_id: vm.appId,
    boot_progress: vm.bootProgress,
    boot_error: vm.bootError,
    shutdown_progress: vm.shutdownProgress,
    image_version: imageVersion,
    events: vm.events.map((e) => ({ ...e })),
    interfaces: [],
  };
  if (vm.instanceId !== undefined) info.instance_id = vm.instanceId;
  if (!vm.running && vm.exitedAt !== undefined) info.exited_at = new Date(vm.exitedAt).toISOString();
  if (!brief) info.configuration = structuredClone(vm.config);
  return info;
}

// "1h 2m 3s" style, like the VMM's humantime output rounded to seconds.
function formatUptime(ms: number): string {
  let rest = Math.max(0, Math.floor(ms / 1000));
  const parts: string[] = [];
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  if (rest > 0 || parts.length === 0) parts.push(`${rest}s`);
  return parts.join(' ');
}
