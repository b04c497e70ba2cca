// The VMM client's hot paths, in both prpc encodings (protobuf and `?json`):
// - decoding a Status reply for N VMs (every resync pass decodes one), in process;
// - Status round trips per second against the simulated VMM holding N VMs (full configuration,
//   as the resync pass asks), one call in flight and 8 in flight;
// - CreateVm round trips per second (created `stopped`, so no simulated boot competes for the CPU).
// Client and simulator share this process, so a round trip counts both sides' CPU.
// Run: node_modules/.bin/node bench/vmm-rpc.ts [--vms 100] [--iterations 200] [--seconds 3]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { decodeMessage, encodeMessage, type WireMode } from '../src/vmm/codec.ts';
import { createVmmClient, type VmmClient } from '../src/vmm/client.ts';
import { renderManifest } from '../src/app/manifest.ts';
import { startSimHost } from '../src/sim/host.ts';
import { DEFAULT_SIM_IMAGE } from '../src/sim/vmm-config.ts';
import { describeMachine, numberArgs, printResult, round } from './report.ts';

const MODES: WireMode[] = ['protobuf', 'json'];
const args = numberArgs({ vms: 100, iterations: 200, seconds: 3 });
const machine = describeMachine();

// A Status reply shaped like a busy host's: N VMs with 2 KiB manifests and 20 events each.
function statusReply(vmCount: number): Record<string, unknown> {
  return {
    vms: Array.from({ length: vmCount }, (_, i) => ({
      id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      name: `app-${i}`,
      status: 'running',
      app_id: 'c0ffee00'.repeat(5),
      boot_progress: 'done',
      configuration: {
        name: `app-${i}`,
        image: DEFAULT_SIM_IMAGE.name,
        compose_file: '{"manifest_version":2}'.padEnd(2048, ' '),
        ports: [{ protocol: 'tcp', host_port: 10_000 + i, vm_port: 80, host_address: '127.0.0.1' }],
        encrypted_env: 'ab'.repeat(512),
      },
      events: Array.from({ length: 20 }, (_, j) => ({ event: 'boot.progress', body: 'done', timestamp: 1_754_550_000_000 + j })),
    })),
    port_mapping_enabled: true,
    total: vmCount,
  };
}

function decodeFigures(mode: WireMode) {
  const body = encodeMessage('vmm.StatusResponse', statusReply(args.vms), mode);
  const start = performance.now();
  for (let i = 0; i < args.iterations; i++) decodeMessage('vmm.StatusResponse', body, mode);
  return { bodyBytes: body.length, decodeMsPerReply: Number(((performance.now() - start) / args.iterations).toFixed(3)) };
}

// Calls per second of `call` over `seconds`, with `inFlight` calls outstanding at any time.
async function callsPerSecond(call: (i: number) => Promise<unknown>, inFlight: number): Promise<number> {
  const deadline = performance.now() + args.seconds * 1000;
  let done = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < deadline) await call(done++);
    }),
  );
  return round(done / ((performance.now() - start) / 1000));
}

function vmConfig(name: string) {
  const manifest = renderManifest({ name, composeText: `services:\n  app:\n    image: nginx:1.27\n`, kms: true, gateway: false, publicLogs: true, publicSysinfo: true, allowedEnvs: [] });
  return { name, image: DEFAULT_SIM_IMAGE.name, compose_file: manifest, vcpu: 2, memory: 2048, disk_size: 20, stopped: true };
}

const dir = await mkdtemp(join(tmpdir(), 'bench-vmm-rpc-'));
const sim = await startSimHost({ dir, kmsUrls: ['https://10.0.2.2:12001'] });
const results = [];
try {
  const seeder = createVmmClient({ url: sim.vmmUrl });
  for (let i = 0; i < args.vms; i++) await seeder.createVm(vmConfig(`seed-${i}`));
  await seeder.close();
  for (const mode of MODES) {
    const client: VmmClient = createVmmClient({ url: sim.vmmUrl, mode });
    const status = () => client.status({ brief: false });
    const created: string[] = [];
    const create = async (i: number) => created.push((await client.createVm(vmConfig(`${mode}-${i}`))).id);
    results.push({
      mode,
      ...decodeFigures(mode),
      statusPerSecond: { oneInFlight: await callsPerSecond(status, 1), eightInFlight: await callsPerSecond(status, 8) },
      createVmPerSecond: { oneInFlight: await callsPerSecond(create, 1) },
    });
    // Keep the VM count at N for the next mode's Status figures.
    for (const id of created) await client.removeVm(id);
    await sim.state.waitFor((vms) => vms.length === args.vms, 30_000);
    await client.close();
  }
} finally {
  await sim.stop();
  await rm(dir, { recursive: true, force: true });
}
printResult('vmm-rpc', machine, { vms: args.vms, results });
