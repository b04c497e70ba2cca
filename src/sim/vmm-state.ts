// The simulated dstack-vmm's VM table and lifecycle rules (docs/dstack.md §2, §2.2, §2.3): what each RPC
// does to a VM, with no I/O of its own. Time comes from an injected clock; app-key requests go
// through an injected function, so tests drive every path without sockets.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Id, ResizeVmRequest, UpdateVmRequest, VmConfiguration } from '../vmm/messages.ts';
import { systemClock } from '../clock.ts';
import { Scheduler } from './scheduler.ts';
import { noGatewayAnswers } from './gateway-guest.ts';
import { runBoot, type BootDeps } from './vm-boot.ts';
import { DEFAULT_SIM_IMAGE, settingsOf, type SimImage, type SimVmmSettings, type VmmStateOptions } from './vmm-config.ts';
import { newVmRecord, pushEvent, statusOf, type SimVm } from './vm-record.ts';
import { gpuLaunchProblem, launchedAddresses, resolveSimGpus, vfioSlotsOf, type SimGpu } from './vm-gpus.ts';
import {
  applyResize,
  checkPortConflicts,
  checkResizable,
  checkResizeRequest,
  isValidImageName,
  requireAppCompose,
  resolveAppId,
  resolveCreatePorts,
  resolveUpdatePorts,
  unknownVmError,
  validateName,
  validateVmId,
  VmmRejection,
  type PortHolder,
  type ResizeRequest,
} from './vm-rules.ts';

// The VM table: RPC semantics plus the fault hooks (crash, VMM restart).
export class VmmState {
  readonly scheduler: Scheduler;
  readonly images: SimImage[];
  // The host's GPUs, whatever vmm.toml offers of them.
  readonly gpus: readonly SimGpu[];
  // What vmm.toml said when the VMM (last) started; replaced by `configure` and `reloadVms`.
  private current: SimVmmSettings;
  private readonly vms = new Map<string, SimVm>();
  private readonly events = new EventEmitter<{ change: [] }>();
  private readonly bootDeps: BootDeps;
  // VM names whose guests hang at boot (faults.stallBoot).
  readonly stalledNames = new Set<string>();
  private readonly shutdownDelayMs: number;
  private readonly removeDelayMs: number;

  constructor(options: VmmStateOptions) {
    this.scheduler = new Scheduler(options.clock ?? systemClock);
    this.images = options.images ?? [DEFAULT_SIM_IMAGE];
    this.gpus = options.gpus ?? [];
    this.current = settingsOf(options);
    this.shutdownDelayMs = options.shutdownDelayMs ?? 20;
    this.removeDelayMs = options.removeDelayMs ?? 20;
    this.bootDeps = {
      scheduler: this.scheduler,
      bootDelayMs: options.bootDelayMs ?? 40,
      maxEvents: options.maxEvents ?? 20,
      requestAppKeys: options.requestAppKeys,
      osImageHashOf: (vm) => this.imageOf(vm.config.image)?.digest ?? '',
      kmsUrlsOf: (vm) => (vm.config.kms_urls.length > 0 ? vm.config.kms_urls : this.current.kmsUrls),
      // make_sys_config: the VM's own gateway_urls when set, else `[cvm].gateway_urls`.
      gatewayUrlsOf: (vm) => [...(vm.config.gateway_urls.length > 0 ? vm.config.gateway_urls : this.current.gatewayUrls)],
      setupGateway: options.setupGateway ?? noGatewayAnswers,
      changed: () => this.changed(),
      powerOff: (vm) => this.endProcess(vm),
      isStalled: (vm) => this.stalledNames.has(vm.config.name),
      openEnv: (vm) => {
        if (!options.openEnv) throw new Error('no env key to open encrypted_env with');
        return options.openEnv(vm.appId, vm.config.encrypted_env);
      },
    };
  }

  // Subscribe to every state change (port listeners follow VMs this way); returns unsubscribe.
  onChange(listener: () => void): () => void {
    this.events.on('change', listener);
    return () => this.events.off('change', listener);
  }

  // Every VM in creation order, as live records: callers must not mutate them.
  list(): readonly SimVm[] {
    return [...this.vms.values()].sort((a, b) => a.createdAt - b.createdAt);
  }

  // One VM, or undefined.
  find(id: string): SimVm | undefined {
    return this.vms.get(id);
  }

  // The loaded vmm.toml settings (GetMeta, ListGpus, GetAppEnvEncryptPubKey), as a copy.
  settings(): SimVmmSettings {
    return structuredClone(this.current);
  }

  // The VMM (re)started with these vmm.toml settings; running VMs are not touched.
  configure(changes: Partial<SimVmmSettings>): void {
    this.current = { ...this.current, ...structuredClone(changes) };
  }

  // The configured image of that directory name.
  imageOf(name: string): SimImage | undefined {
    return this.images.find((image) => image.name === name);
  }

  // The GPUs and NVSwitches running VMs hold (sysfs addresses): ListGpus shows them taken.
  busyGpus(): Set<string> {
    return new Set(this.list().flatMap((vm) => vm.launchedGpus));
  }

  // CreateVm: validate in upstream's order, record the manifest, start unless `stopped`. The
  // manifest always has a GpuConfig, the default one when none was asked for.
  createVm(request: VmConfiguration): Id {
    validateName(request.name);
    const ports = resolveCreatePorts(request.ports, this.current.portMapping);
    const { config: gpus, bridges } = resolveSimGpus(request.gpus, this.gpus, this.current.gpu);
    checkPortConflicts(ports, this.portHolders(undefined));
    this.checkImage(request.image, 'Failed to load VM');
    requireAppCompose(request.compose_file, 'Failed to load VM: Failed to read compose file');
    const appId = resolveAppId(request.app_id, request.compose_file);
    const id = randomUUID();
    const config = { ...structuredClone(request), app_id: appId, ports, gpus, stopped: false };
    const vm = newVmRecord({ id, appId, createdAt: this.scheduler.clock.now(), config, bridges, ports, started: !request.stopped });
    this.vms.set(id, vm);
    if (vm.started) this.launch(vm);
    else this.changed();
    return { id };
  }

  // StartVm: set started; launch only if the process is not already running (then a no-op).
  startVm(id: string): void {
    const vm = this.require(id, 'Failed to start VM');
    if (vm.removing) throw new VmmRejection('Failed to start VM: VM is being removed');
    vm.started = true;
    if (vm.running) this.changed();
    else this.launch(vm);
  }

  // StopVm: clear started and hard-stop the process. The disk (instance seed) is kept.
  stopVm(id: string): void {
    const vm = this.require(id, 'Failed to stop VM');
    vm.started = false;
    if (vm.running) this.endProcess(vm);
    else this.changed();
  }

  // ShutdownVm: ask the guest; it reports "powering off" (started=false, status stopping),
  // then the process exits (stopped).
  shutdownVm(id: string): void {
    const vm = this.require(id, 'Failed to shutdown VM');
    if (!vm.running) throw new VmmRejection('Failed to shutdown VM: VM is not running');
    const generation = vm.generation;
    const guestReport = (body: string): void => {
      vm.shutdownProgress = body;
      pushEvent(vm, 'shutdown.progress', body, this.scheduler.clock.now(), this.bootDeps.maxEvents);
    };
    guestReport('shutting down');
    this.changed();
    const half = Math.max(1, Math.floor(this.shutdownDelayMs / 2));
    this.scheduler.after(half, () => {
      if (vm.generation !== generation || !vm.running) return;
      guestReport('powering off');
      vm.started = false;
      this.changed();
      this.scheduler.after(half, () => {
        if (vm.generation === generation && vm.running) this.endProcess(vm);
      });
    });
  }

  // RemoveVm: asynchronous. The VM shows `removing` and keeps its ports until the cleanup.
  removeVm(id: string): void {
    const vm = this.require(id, 'Failed to remove VM');
    if (vm.removing) return;
    vm.removing = true;
    vm.started = false;
    if (vm.running) this.endProcess(vm);
    else this.changed();
    this.scheduler.after(this.removeDelayMs, () => this.finishRemoval(vm));
  }

  // UpdateVm and UpgradeApp: validate everything first, then rewrite the manifest and shared
  // files. It never restarts the VM; the reply is the app id of the NEW compose ("" without one),
  // not the VM id. Checks run in upstream's order (`update_vm`), which names an unknown VM by the
  // first of its files it reaches.
  updateVm(request: UpdateVmRequest): Id {
    if (request.compose_file !== '') requireAppCompose(request.compose_file, 'Invalid compose file');
    validateVmId(request.id);
    const vm = this.vms.get(request.id);
    if (!vm) throw unknownVmError(request, this.current.runPath);
    this.checkResize(vm, request);
    const gpus = request.gpus === undefined ? undefined : resolveSimGpus(request.gpus, this.gpus, this.current.gpu);
    const ports = request.update_ports ? resolveUpdatePorts(request.ports) : undefined;
    if (ports) checkPortConflicts(ports, this.portHolders(vm.id));
    const config = vm.config;
    if (request.compose_file !== '') config.compose_file = request.compose_file;
    if (request.encrypted_env !== '') config.encrypted_env = request.encrypted_env;
    if (request.user_config !== '') config.user_config = request.user_config;
    applyResize(config, request);
    if (gpus !== undefined) {
      config.gpus = gpus.config;
      vm.bridges = gpus.bridges;
    }
    if (request.no_tee !== undefined) config.no_tee = request.no_tee;
    if (ports) vm.ports = config.ports = ports;
    if (request.update_kms_urls) config.kms_urls = [...request.kms_urls];
    if (request.update_gateway_urls) config.gateway_urls = [...request.gateway_urls];
    if (request.update_networking) config.networks = structuredClone(request.networks);
    this.changed();
    return { id: request.compose_file === '' ? '' : resolveAppId(undefined, request.compose_file) };
  }

  // ResizeVm (upstream `resize_vm`): the resource half of UpdateVm, with its own request checks.
  resizeVm(request: ResizeVmRequest): void {
    checkResizeRequest(request);
    validateVmId(request.id);
    const vm = this.vms.get(request.id);
    if (!vm) throw unknownVmError({ resize: true, id: request.id }, this.current.runPath);
    this.checkResize(vm, request);
    applyResize(vm.config, request);
    this.changed();
  }

  // The VM's process dies on its own (a fault, or QEMU failing to launch): the started flag
  // stays, so it shows `exited`. `reason` lands in the VM's events as `vmm.process.exited`.
  crashVm(id: string, reason = 'killed'): void {
    const vm = this.require(id, 'Failed to crash VM');
    if (!vm.running) return;
    pushEvent(vm, 'vmm.process.exited', reason, this.scheduler.clock.now(), this.bootDeps.maxEvents);
    this.endProcess(vm);
  }

  // VMM restart, first half: its control group dies, so every QEMU stops; pending removals
  // finish; boot_progress lives in memory only and resets to "".
  stopAllProcesses(): void {
    for (const vm of this.list()) {
      if (vm.running) this.endProcess(vm);
      if (vm.removing) this.finishRemoval(vm);
      vm.bootProgress = '';
      vm.shutdownProgress = '';
    }
    this.changed();
  }

  // VMM restart, second half (`reload_vms`): `changes` stands for keys edited in vmm.toml before
  // the restart; then every VM whose started flag is set boots.
  reloadVms(changes: Partial<SimVmmSettings> = {}): void {
    this.configure(changes);
    for (const vm of this.list()) if (vm.started && !vm.running) this.launch(vm);
  }

  // Cancel every timer; the state is dead afterwards.
  dispose(): void {
    this.scheduler.dispose();
    this.events.removeAllListeners();
  }

  private require(id: string, context: string): SimVm {
    const vm = this.vms.get(id);
    if (!vm) throw new VmmRejection(`${context}: VM not found`);
    return vm;
  }

  // Every VM's configured ports, removing and stopped ones included (docs/dstack.md §2).
  private portHolders(exceptId: string | undefined): PortHolder[] {
    return this.list()
      .filter((vm) => vm.id !== exceptId)
      .map((vm) => ({ id: vm.id, name: vm.config.name, ports: vm.ports }));
  }

  // upstream `apply_resource_updates`; the image is checked here too (upstream writes the manifest
  // first and only `load_vm` refuses it).
  private checkResize(vm: SimVm, request: ResizeRequest): void {
    checkResizable(statusOf(vm), vm.id, vm.config.disk_size, request);
    if (request.image !== undefined) this.checkImage(request.image, 'Failed to load VM');
  }

  private checkImage(image: string, context: string): void {
    if (!isValidImageName(image)) throw new VmmRejection(`${context}: Invalid image name`);
    if (!this.imageOf(image)) {
      throw new VmmRejection(`${context}: Failed to load image: image directory ${image} not found`);
    }
  }

  // QEMU starts; one that cannot open a GPU or NVSwitch it is given exits at once (an unknown slot,
  // one another VM holds, one not on vfio-pci), and the VM shows `exited`.
  private launch(vm: SimVm): void {
    const slots = vfioSlotsOf(vm.config.gpus, vm.bridges, this.current.gpu);
    const gpuProblem = gpuLaunchProblem(slots, this.gpus, this.busyGpus());
    vm.running = true;
    vm.generation += 1;
    vm.launchedAt = this.scheduler.clock.now();
    vm.exitedAt = undefined;
    vm.launchedPorts = vm.ports.map((p) => ({ ...p }));
    vm.launchedGpus = gpuProblem === undefined ? launchedAddresses(slots) : [];
    vm.launchedCompose = vm.config.compose_file;
    vm.launchedEnv = vm.config.encrypted_env;
    vm.bootProgress = 'booting';
    vm.bootError = '';
    vm.shutdownProgress = '';
    this.changed();
    if (gpuProblem !== undefined) this.crashVm(vm.id, gpuProblem);
    else runBoot(vm, this.bootDeps);
  }

  private endProcess(vm: SimVm): void {
    vm.running = false;
    vm.generation += 1;
    vm.exitedAt = this.scheduler.clock.now();
    vm.launchedPorts = [];
    vm.launchedGpus = [];
    vm.launchedCompose = '';
    vm.launchedEnv = '';
    this.changed();
  }

  private finishRemoval(vm: SimVm): void {
    if (this.vms.get(vm.id) !== vm) return;
    if (vm.running) this.endProcess(vm);
    this.vms.delete(vm.id);
    this.changed();
  }

  private changed(): void {
    this.events.emit('change');
  }
}

