// QEMU's `hostfwd` for simulated VMs: while a VM's process runs, each tcp port it was launched
// with is a real listener on host_address:host_port, so `curl http://127.0.0.1:PORT/` reaches
// "the app". Ports come from launch time: UpdateVm changes them only after a restart, as upstream.
import { createServer } from 'node:http';
import { listenServer, type BoundServer } from './http-server.ts';
import type { SimVm } from './vm-record.ts';
import type { HostPort } from './vm-rules.ts';
import type { VmmState } from './vmm-state.ts';

// The running set of listeners; close() stops following the state and unbinds everything.
export type PortListeners = { close: () => Promise<void> };

type Entry = { vmId: string; ready: Promise<BoundServer | undefined>; wanted: boolean };

// Follow `state` and keep one listener per launched tcp port of every running VM, except those
// `servedElsewhere` claims (the simulated KMS's RPC port, the simulated gateway's three ports). A port that cannot be bound makes the
// launch fail like QEMU's would: the VM's process exits.
export function startPortListeners(state: VmmState, servedElsewhere: (vm: SimVm, port: HostPort) => boolean = () => false): PortListeners {
  const entries = new Map<string, Entry>();
  let closed = false;

  const open = (vm: SimVm, address: string, port: number): Entry => {
    const server = createServer((req, res) => {
      const current = state.find(vm.id);
      // Before the containers run, the guest port has no listener: slirp resets the connection.
      if (!current?.running || current.bootProgress !== 'done') {
        req.socket.destroy();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      const env = current.envNames.length > 0 ? `; env: ${current.envNames.join(', ')}` : '';
      res.end(`app ${current.config.name} (app_id ${current.appId}) on simulated VM ${current.id}${env}\n`);
    });
    const generation = vm.generation;
    const ready = listenServer(server, { host: address, port }).catch((err: unknown) => {
      const reason = err instanceof Error ? err.message : String(err);
      if (!closed && state.find(vm.id)?.generation === generation) {
        state.crashVm(vm.id, `qemu: could not set up host forwarding rule 'tcp:${address}:${port}': ${reason}`);
      }
      return undefined;
    });
    return { vmId: vm.id, ready, wanted: true };
  };

  const sync = (): void => {
    if (closed) return;
    for (const entry of entries.values()) entry.wanted = false;
    for (const vm of state.list()) {
      if (!vm.running) continue;
      for (const p of vm.launchedPorts) {
        if (p.protocol !== 'tcp' || servedElsewhere(vm, p)) continue;
        const key = `${vm.id} ${p.host_address} ${p.host_port}`;
        const entry = entries.get(key) ?? open(vm, p.host_address, p.host_port);
        entry.wanted = true;
        entries.set(key, entry);
      }
    }
    for (const [key, entry] of entries) {
      if (entry.wanted) continue;
      entries.delete(key);
      void entry.ready.then((bound) => bound?.close());
    }
  };

  const unsubscribe = state.onChange(sync);
  sync();
  return {
    close: async () => {
      closed = true;
      unsubscribe();
      const all = [...entries.values()];
      entries.clear();
      await Promise.all(all.map(async (entry) => (await entry.ready)?.close()));
    },
  };
}
