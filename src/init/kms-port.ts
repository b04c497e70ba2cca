// The KMS CVM's host port is chosen before the VMM first starts, because `[cvm] kms_urls` in
// vmm.toml names it and the VMM reads that file only at start: learning it later would mean
// restarting dstack-vmm, which kills every CVM (docs/dstack.md §5.7).
import { createServer } from 'node:net';
import type { PortRange } from './config-schema.ts';
import { InitError } from './errors.ts';

// Automatic picks start here: below the kernel's ephemeral range (32768 and up), so no
// outgoing connection is holding the port when QEMU binds it, and clear of the well-known ports.
const FIRST_AUTO_PORT = 9201;
const MAX_PROBES = 2000;

// What decides the port: supervisor.toml's `kms_port` (0 = auto), the port already rendered by a
// previous init, the ranges the VMM may map, ports other services own, and the host addresses
// the KMS is published on (kms-compose.ts `kmsHostAddresses`): a pick must be free on each.
export type KmsPortInputs = { configured: number; previous: number | undefined; ranges: readonly PortRange[]; reserved: readonly number[]; addresses: readonly string[] };

// Whether a TCP port can be bound on a host address now; injectable so tests decide.
export type PortProbe = (address: string, port: number) => Promise<boolean>;

// The configured port, else the previously rendered one, else the first free port from 9201 up.
export async function pickKmsPort(inputs: KmsPortInputs, isFree: PortProbe = isPortFree): Promise<number> {
  const tcp = inputs.ranges.filter((r) => r.protocol === 'tcp');
  const inRange = (port: number): boolean => tcp.some((r) => port >= r.from && port <= r.to);
  if (inputs.configured !== 0) {
    if (!inRange(inputs.configured)) throw outOfRange(`[init] kms_port = ${inputs.configured} is outside every tcp entry of [init] port_ranges`);
    return inputs.configured;
  }
  // Not probed: once the KMS CVM runs, QEMU holds this port, and that is the point.
  if (inputs.previous !== undefined && inRange(inputs.previous)) return inputs.previous;
  let probes = 0;
  for (const range of tcp) {
    for (let port = Math.max(range.from, FIRST_AUTO_PORT); port <= range.to && probes < MAX_PROBES; port++, probes++) {
      if (!inputs.reserved.includes(port) && (await isFreeOnAll(inputs.addresses, port, isFree))) return port;
    }
  }
  throw outOfRange(`no free tcp port from ${FIRST_AUTO_PORT} up inside [init] port_ranges for the KMS; set [init] kms_port in supervisor.toml`);
}

// Bind address:port and release it again. An address that is not this host's is refused as
// such: no port would ever be free on it.
export async function isPortFree(address: string, port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRNOTAVAIL' ? reject(notLocal(address)) : resolve(false)));
    server.listen(port, address, () => server.close(() => resolve(true)));
  });
}

// Refuse `[init] kms_host_address` unless this host can bind it, before any VM is made: QEMU
// would otherwise fail to set up its forward and the KMS CVM would exit at launch.
export async function checkKmsHostAddress(address: string): Promise<void> {
  await isPortFree(address, 0);
}

async function isFreeOnAll(addresses: readonly string[], port: number, isFree: PortProbe): Promise<boolean> {
  for (const address of addresses) if (!(await isFree(address, port))) return false;
  return true;
}

function notLocal(address: string): InitError {
  return new InitError('INIT_RENDER', `init render: [init] kms_host_address = "${address}" is not an address of this host (binding it fails with EADDRNOTAVAIL); use 127.0.0.1, 0.0.0.0 or one of this host's addresses`);
}

function outOfRange(message: string): InitError {
  return new InitError('INIT_RENDER', `init render: ${message}`);
}
