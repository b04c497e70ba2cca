// QEMU's user-mode `hostfwd` for a service running inside a simulated guest: the host port is
// bound for as long as the VM's process runs, and each connection is relayed to wherever the
// guest's service listens now. While nothing listens in the guest, slirp accepts the connection
// and then resets it, so a client sees ECONNRESET rather than ECONNREFUSED.
import { connect, createServer, type Socket } from 'node:net';
import { listenServer, type BoundServer } from './http-server.ts';

// Where the guest's service listens, or undefined while it does not.
export type ForwardTarget = () => { host: string; port: number } | undefined;

// Bind `host:port` and relay every connection to `target()`; close() drops every relayed socket.
export async function startTcpForward(listen: { host: string; port: number }, target: ForwardTarget): Promise<BoundServer> {
  const server = createServer((client) => {
    const to = target();
    if (to === undefined) {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect(to.port, to.host);
    relay(client, upstream);
  });
  return listenServer(server, listen);
}

// Pipe both ways; either side ending or failing ends the other (a guest service that went away
// resets the client, as slirp does).
function relay(client: Socket, upstream: Socket): void {
  client.pipe(upstream);
  upstream.pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.resetAndDestroy());
  client.on('close', () => upstream.destroy());
  upstream.on('close', () => client.destroy());
}
