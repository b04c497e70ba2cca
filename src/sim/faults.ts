// Fault injection for the simulated VMM, as a plain in-process object: failed and slow calls,
// crashed VMs and a VMM restart. The server consults `gate` around every prpc call.
import type { Scheduler } from './scheduler.ts';
import { VmmRejection } from './vm-rules.ts';
import type { VmmState } from './vmm-state.ts';
import type { SimGpuSettings } from './vm-gpus.ts';

// How a forced failure behaves. `afterApply` runs the call first and then fails the reply,
// the "did my CreateVm happen?" case a client must survive.
export type FailOptions = { count?: number; message?: string; afterApply?: boolean };

// What a call is about: the VM id a request names, and the VM name of a CreateVm request.
export type CallTarget = { vmId?: string; name?: string };

// How a call ended: applied, refused by the VMM's own rules, failed by an injected fault before
// it ran, or run and then failed by an injected fault (`afterApply`).
export type CallOutcome = 'pending' | 'ok' | 'rejected' | 'fault' | 'fault-after-apply';

// One prpc call as the VMM saw it, attributed to a VM by id and name (the name looked up when
// the call arrived, so it survives the VM's removal; a CreateVm gets the id its reply names),
// so a test can count what was done to each app's VM.
export type CallRecord = { method: string; vmId?: string; name?: string; at: number; outcome: CallOutcome };

// Options of a simulated VMM restart; `kmsUrls` and `gpu` stand for a vmm.toml edited before it.
export type RestartOptions = { kmsUrls?: string[]; gpu?: SimGpuSettings; downtimeMs?: number };

// What tests call.
export type Faults = {
  // Fail the next `count` (default 1) calls of `method` with a 400 carrying `message`.
  failNext: (method: string, options?: FailOptions) => void;
  // Delay every call, or only `method`'s, by `ms` before it runs. 0 removes the delay.
  setLatency: (ms: number, method?: string) => void;
  // The VM's QEMU dies on its own: started stays set, status becomes `exited`.
  crashVm: (id: string) => void;
  // Restart dstack-vmm: every VM process stops, the socket is down for `downtimeMs`, then VMs
  // with the started flag boot again from boot_progress "".
  restartVmm: (options?: RestartOptions) => Promise<void>;
  // Guests of VMs named `name` hang during boot from now on: boot_progress stops moving.
  stallBoot: (name: string) => void;
  // Every prpc method called so far, in order (after the auth check).
  calls: () => string[];
  // The same calls with their VM and outcome (copies; a pending call's outcome may still change).
  callLog: () => CallRecord[];
  // Drop every pending failure and latency.
  reset: () => void;
};

// The server's side: run `apply` for `method` with the injected latency and failures.
export type FaultGate = <T>(method: string, apply: () => T | Promise<T>, target?: CallTarget) => Promise<T>;

// The VMM socket's lifecycle, so a restart can take it down and bring it back.
export type ServerControl = { down: () => Promise<void>; up: () => Promise<void> };

// Build the fault object and the gate the server uses.
export function createFaults(state: VmmState, scheduler: Scheduler, server: ServerControl): { faults: Faults; gate: FaultGate } {
  const failures = new Map<string, Required<FailOptions>[]>();
  const latency = new Map<string, number>();
  const log: string[] = [];
  const records: CallRecord[] = [];
  const ALL = '*';
  const sleep = (ms: number): Promise<void> => scheduler.sleep(ms);

  // Run `apply`, noting its outcome; a call by name (CreateVm) learns its VM id from the reply.
  const applied = async <T>(record: CallRecord, apply: () => T | Promise<T>, outcome: CallOutcome): Promise<T> => {
    let reply: T;
    try {
      reply = await apply();
    } catch (err) {
      record.outcome = 'rejected';
      throw err;
    }
    record.outcome = outcome;
    const id = (reply as { id?: unknown } | null)?.id;
    if (record.vmId === undefined && record.name !== undefined && typeof id === 'string') record.vmId = id;
    return reply;
  };

  const gate: FaultGate = async (method, apply, target = {}) => {
    log.push(method);
    const name = target.name ?? (target.vmId === undefined ? undefined : state.find(target.vmId)?.config.name);
    const record: CallRecord = { method, ...target, ...(name === undefined ? {} : { name }), at: scheduler.clock.now(), outcome: 'pending' };
    records.push(record);
    await sleep((latency.get(ALL) ?? 0) + (latency.get(method) ?? 0));
    const failure = failures.get(method)?.shift();
    if (failure === undefined) return applied(record, apply, 'ok');
    if (failure.afterApply) await applied(record, apply, 'fault-after-apply');
    else record.outcome = 'fault';
    throw new VmmRejection(failure.message);
  };

  const faults: Faults = {
    failNext: (method, options = {}) => {
      const queue = failures.get(method) ?? [];
      const entry = { count: 1, message: `simulated failure of ${method}`, afterApply: false, ...options };
      for (let i = 0; i < entry.count; i += 1) queue.push(entry);
      failures.set(method, queue);
    },
    setLatency: (ms, method = ALL) => {
      if (ms > 0) latency.set(method, ms);
      else latency.delete(method);
    },
    crashVm: (id) => state.crashVm(id),
    stallBoot: (name) => void state.stalledNames.add(name),
    restartVmm: async (options = {}) => {
      state.stopAllProcesses();
      await server.down();
      await sleep(options.downtimeMs ?? 0);
      await server.up();
      state.reloadVms({ ...(options.kmsUrls === undefined ? {} : { kmsUrls: options.kmsUrls }), ...(options.gpu === undefined ? {} : { gpu: options.gpu }) });
    },
    calls: () => [...log],
    callLog: () => records.map((r) => ({ ...r })),
    reset: () => {
      failures.clear();
      latency.clear();
      state.stalledNames.clear();
    },
  };
  return { faults, gate };
}
