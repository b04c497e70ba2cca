// Hot path of every resync: decoding a Status reply for N VMs, in both prpc encodings.
// Stub: the client round trip against the simulated VMM (src/sim/) is to be added once that
// server exists. Run: node_modules/.bin/node bench/vmm-rpc.ts [vms] [iterations]
import { performance } from 'node:perf_hooks';
import { decodeMessage, encodeMessage } from '../src/vmm/codec.ts';
import type { WireMode } from '../src/vmm/codec.ts';

const vmCount = Number(process.argv[2] ?? 100);
const iterations = Number(process.argv[3] ?? 200);

const reply = {
  vms: Array.from({ length: vmCount }, (_, i) => ({
    id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    name: `app-${i}`,
    status: 'running',
    app_id: 'c0ffee00'.repeat(5),
    boot_progress: 'done',
    configuration: {
      name: `app-${i}`,
      image: 'dstack-0.5.11',
      compose_file: '{"manifest_version":2}'.padEnd(2048, ' '),
      ports: [{ protocol: 'tcp', host_port: 10_000 + i, vm_port: 80, host_address: '127.0.0.1' }],
      encrypted_env: 'ab'.repeat(512),
    },
    events: Array.from({ length: 20 }, (_, j) => ({ event: 'boot.progress', body: 'done', timestamp: 1_754_550_000_000 + j })),
  })),
  port_mapping_enabled: true,
  total: vmCount,
};

const results = (['protobuf', 'json'] as WireMode[]).map((mode) => {
  const body = encodeMessage('vmm.StatusResponse', reply, mode);
  const start = performance.now();
  for (let i = 0; i < iterations; i++) decodeMessage('vmm.StatusResponse', body, mode);
  const ms = (performance.now() - start) / iterations;
  return { mode, vms: vmCount, bodyBytes: body.length, decodeMsPerReply: Number(ms.toFixed(3)) };
});

console.log(JSON.stringify({ bench: 'vmm-rpc', results }, null, 2));
