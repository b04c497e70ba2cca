// Server plumbing shared by the simulated VMM, webhook, port listeners and gateway: binding with
// a close that really ends it (`server.close()` alone waits for open sockets, which is what
// leaves a test process hanging), and reading a request body.
import type { IncomingMessage } from 'node:http';
import type { AddressInfo, Server, Socket } from 'node:net';

// Where to listen: a unix socket path, or a TCP host and port (0 = any free port).
export type ListenTarget = { path: string } | { host: string; port: number };

// A bound server: its TCP port (0 for a unix socket) and an idempotent close.
export type BoundServer = { port: number; close: () => Promise<void> };

// Listen on `target`, rejecting with the bind error (EADDRINUSE, EACCES) instead of throwing later.
// Any net server (http, https, raw TCP): close() destroys every socket it accepted.
export async function listenServer(server: Server, target: ListenTarget): Promise<BoundServer> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    const done = (): void => {
      server.off('error', onError);
      resolve();
    };
    if ('path' in target) server.listen(target.path, done);
    else server.listen(target.port, target.host, done);
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? (address as AddressInfo).port : 0;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    });
    return closing;
  };
  return { port, close };
}

// The whole request body.
export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
