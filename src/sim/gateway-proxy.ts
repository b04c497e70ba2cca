// The gateway's public HTTPS port (dstack/gateway/src/proxy.rs `handle_connection`,
// proxy/tls_terminate.rs, proxy/tls_passthough.rs). Per connection, before any handshake: read
// the SNI; no SNI, or a parent domain without a loaded wildcard certificate, closes the socket;
// otherwise the first label picks an instance or app and a CVM port. Unknown ids close the
// socket before the handshake too. `gateway.<base>` is the node itself (`/health`); other ids are
// TLS-terminated with the wildcard and relayed to the app's listener for that port, or with `s`
// passed through untouched.
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';
import { createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import { backendFor, instancesFor, type Backend } from './gateway-registry.ts';
import { parseDestination, scanSni, SNI_READ_LIMIT, type Destination } from './gateway-sni.ts';
import type { CertData, GatewayInstance, GatewayStore } from './gateway-store.ts';
import { listenServer, type BoundServer } from './http-server.ts';

// The running proxy: its port, its in-memory certificates and its connection counts.
export type GatewayProxy = {
  port: number;
  // Load (or replace) the wildcard for `*.<domain>` (upstream's CertResolver).
  loadCert: (domain: string, cert: CertData) => void;
  // Whether `*.<domain>` is served now (`loaded_in_memory`).
  hasCert: (domain: string) => boolean;
  // Open relayed connections of one instance, and of all.
  connections: (instanceId: string) => number;
  totalConnections: () => number;
  close: () => Promise<void>;
};

// What the proxy routes with.
export type ProxyOptions = { host: string; port: number; store: GatewayStore; log: (line: string) => void };

// Bind the proxy and load every stored certificate, as upstream does at start (those of deleted
// ZT-domains included).
export async function startGatewayProxy(options: ProxyOptions): Promise<GatewayProxy> {
  const { store, log } = options;
  const contexts = new Map<string, SecureContext>();
  const open = new Map<string, number>();
  const nodeServer = createHttpServer(answerNode);
  const loadCert = (domain: string, cert: CertData): void => void contexts.set(domain, createSecureContext({ key: cert.keyPem, cert: cert.certPem }));
  for (const [domain, cert] of store.certs) loadCert(domain, cert);

  const refuse = (socket: Socket, sni: string, reason: string): void => {
    log(`proxy: ${sni === '' ? 'connection' : sni}: ${reason}`);
    socket.destroy();
  };

  // Hand the client to the first backend that accepts a connection.
  const relayToApp = (client: Socket, instances: GatewayInstance[], dst: Destination, sni: string, head?: Buffer): void => {
    const backends = instances.map((i) => backendFor(i, dst.port)).filter((b): b is Backend => b !== undefined);
    connectFirst(backends).then(
      ({ upstream, instanceId }) => {
        // The client left (or the gateway closed) while we dialled.
        if (client.destroyed) return void upstream.destroy();
        open.set(instanceId, (open.get(instanceId) ?? 0) + 1);
        upstream.once('close', () => open.set(instanceId, (open.get(instanceId) ?? 1) - 1));
        if (head !== undefined) upstream.write(head);
        relay(client, upstream);
      },
      () => refuse(client, sni, `failed to connect to app ${dst.id} port ${dst.port}`),
    );
  };

  const route = (socket: Socket, head: Buffer, sni: string | undefined): void => {
    if (sni === undefined) return refuse(socket, '', 'no sni found');
    const dot = sni.indexOf('.');
    if (dot < 0) return refuse(socket, sni, 'invalid sni');
    const context = contexts.get(sni.slice(dot + 1));
    // Upstream looks up a `_dstack-app-address` TXT record here and passes through; no DNS here.
    if (context === undefined) return refuse(socket, sni, 'no wildcard certificate for its parent domain (TXT-record passthrough is not simulated)');
    let dst: Destination;
    try {
      dst = parseDestination(sni.slice(0, dot));
    } catch (err) {
      return refuse(socket, sni, err instanceof Error ? err.message : String(err));
    }
    if (dst.id === 'gateway' && !dst.passthrough) {
      if (dst.port !== 80) return refuse(socket, sni, 'Only port 80 is supported for this node');
      const tls = terminate(socket, head, context, dst.h2);
      tls.once('secure', () => nodeServer.emit('connection', tls));
      return;
    }
    const instances = instancesFor(store, dst.id);
    if (instances === undefined) return refuse(socket, sni, `app <${dst.id}> not found`);
    if (dst.passthrough) return relayToApp(socket, instances, dst, sni, head);
    const tls = terminate(socket, head, context, dst.h2);
    tls.once('secure', () => relayToApp(tls, instances, dst, sni));
  };

  const server = createServer((socket) => {
    // Peers hang up mid-connection all the time; that is not the gateway's error.
    socket.on('error', () => socket.destroy());
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const scan = scanSni(head.subarray(0, SNI_READ_LIMIT));
      if (scan.kind === 'more' && head.length < SNI_READ_LIMIT) return;
      socket.off('data', onData).off('end', onEnd).pause();
      route(socket, head, scan.kind === 'found' ? scan.name : undefined);
    };
    const onEnd = (): void => refuse(socket, '', 'no sni found');
    socket.on('data', onData).once('end', onEnd);
  });
  const bound: BoundServer = await listenServer(server, { host: options.host, port: options.port });

  return {
    port: bound.port,
    loadCert,
    hasCert: (domain) => contexts.has(domain),
    connections: (instanceId) => open.get(instanceId) ?? 0,
    totalConnections: () => [...open.values()].reduce((a, b) => a + b, 0),
    close: () => bound.close(),
  };
}

// Accept TLS on a socket whose first bytes were already read (they are put back first).
function terminate(socket: Socket, head: Buffer, secureContext: SecureContext, h2: boolean): TLSSocket {
  socket.unshift(head);
  const tls = new TLSSocket(socket, { isServer: true, secureContext, ...(h2 ? { ALPNProtocols: ['h2'] } : {}) });
  tls.on('error', () => socket.destroy());
  return tls;
}

// Connect to the backends in turn; the first that accepts wins.
async function connectFirst(backends: Backend[]): Promise<{ upstream: Socket; instanceId: string }> {
  for (const backend of backends) {
    const upstream = await new Promise<Socket | undefined>((resolve) => {
      const socket = connect(backend.port, backend.host);
      socket.once('connect', () => resolve(socket));
      socket.once('error', () => resolve(undefined));
    });
    if (upstream !== undefined) return { upstream, instanceId: backend.instanceId };
  }
  throw new Error('no backend accepted the connection');
}

// Pipe both ways; either side closing or failing ends both.
function relay(a: Socket, b: Socket): void {
  a.pipe(b);
  b.pipe(a);
  for (const [one, other] of [[a, b], [b, a]] as const) {
    one.on('error', () => other.destroy());
    one.once('close', () => other.destroy());
  }
}

// `gateway.<base>` (tls_terminate.rs `handle_this_node`): GET only; `/health` is an empty 200,
// `/.dstack/index` lists the node's paths; app-info and acme-info need a guest agent and a TDX
// quote, so they are 404 here.
function answerNode(req: IncomingMessage, res: ServerResponse): void {
  if (req.method !== 'GET') {
    res.writeHead(405).end();
    return;
  }
  const path = new URL(req.url ?? '/', 'https://gateway').pathname;
  if (path === '/health') {
    res.writeHead(200).end();
    return;
  }
  if (path.replace(/^\/\.dstack/, '') === '/index') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ type: 'dstack gateway', paths: ['/index', '/app-info', '/acme-info'] }));
    return;
  }
  res.writeHead(404).end();
}
