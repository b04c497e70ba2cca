// HTTP exchange with dstack-vmm over a unix socket or TCP: dialing, deadlines and the mapping of
// transport failures to VmmError codes. Knows nothing about message encodings.
// Node's own http client, not undici: undici's code and the WebAssembly HTTP parser it compiles
// cost 27 MB more resident memory than node:http for the same 20 POSTs to a local server (79.4 vs
// 51.9 MB, each an esbuild bundle on Node 24), against an RSS goal of 70 MB (README "Measured speed",
// bench/idle.ts). node:http parses with the llhttp built into Node.
import type * as http from 'node:http';
import type * as https from 'node:https';
import { describeError } from '../errors.ts';
import { addressError, protocolError, timeoutError, unreachableError, VmmError } from './errors.ts';

// Where to send requests: the URL origin and, for unix sockets, the socket path.
export type VmmAddress = { baseUrl: string; socketPath?: string };

// Parse a VMM address in vmm.toml form (`unix:<path>`, `tcp:<host>:<port>`) or as an http(s) URL.
export function parseVmmAddress(address: string): VmmAddress {
  if (address.startsWith('unix:')) {
    const socketPath = address.slice('unix:'.length);
    if (socketPath === '') throw addressError(address);
    // The host is ignored on a unix socket; the request line still needs one.
    return { baseUrl: 'http://localhost', socketPath };
  }
  if (address.startsWith('tcp:')) {
    const hostPort = address.slice('tcp:'.length);
    if (!/^(?:\[[0-9a-fA-F:.]+\]|[^:\s/]+):\d{1,5}$/.test(hostPort)) throw addressError(address);
    return { baseUrl: `http://${hostPort}` };
  }
  if (/^https?:\/\/\S+$/.test(address) && URL.canParse(address)) {
    return { baseUrl: address.replace(/\/+$/, '') };
  }
  throw addressError(address);
}

// One HTTP exchange: what the caller sends and what came back.
export type Exchange = {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer;
  timeoutMs: number;
};
export type Reply = { status: number; body: Buffer };

// Connection-level errno values that mean "nothing to talk to at this address".
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ENOENT',
  'EACCES',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

// An idle kept-alive connection is closed after this (or a second before the VMM's own
// `Keep-Alive: timeout=` hint, if that is sooner), so a request never reuses a socket the VMM is
// closing at that moment (ECONNRESET). undici's default, which this transport used before.
const IDLE_SOCKET_MS = 4000;

// A reusable connection pool to one VMM; `send` never retries (retry is a separate layer).
export type VmmTransport = {
  url: string;
  send(exchange: Exchange): Promise<Reply>;
  close(): Promise<void>;
};

// Open a transport to `url` (any form parseVmmAddress accepts).
export function openVmmTransport(url: string): VmmTransport {
  const address = parseVmmAddress(url);
  const target = new URL(address.baseUrl);
  // Not `import ... from 'node:http'`: an ES import builds the module's namespace, which reads
  // its lazy WebSocket/CloseEvent/MessageEvent getters and so loads Node's internal undici with
  // TLS, HTTP/2 and web streams: 13.6 MB of resident memory more than getBuiltinModule() (47.6 vs
  // 61.2 MB for a bare Node 24 process). Only an https:// VMM loads node:https (and TLS).
  const client: typeof http | typeof https = process.getBuiltinModule(target.protocol === 'https:' ? 'node:https' : 'node:http');
  const agent = new client.Agent({ keepAlive: true, timeout: IDLE_SOCKET_MS });
  const inFlight = new Set<Promise<unknown>>();

  function exchangeOnce(exchange: Exchange, signal: AbortSignal): Promise<Reply> {
    const options: http.RequestOptions = {
      agent,
      method: 'POST',
      path: exchange.path,
      headers: { ...exchange.headers, 'content-length': String(exchange.body.length) },
      signal,
      ...(address.socketPath === undefined
        ? { protocol: target.protocol, hostname: target.hostname.replace(/^\[|\]$/g, ''), port: target.port }
        : { socketPath: address.socketPath, host: 'localhost' }),
    };
    return new Promise<Reply>((resolve, reject) => {
      const req = client.request(options, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.once('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.once('error', reject);
      });
      req.once('error', reject);
      req.end(exchange.body);
    });
  }

  async function send(exchange: Exchange): Promise<Reply> {
    // Our own timer, cleared when the exchange ends: AbortSignal.timeout()'s stays armed for the
    // whole timeout after every call and woke an idle process once per call (bench/idle.ts).
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), exchange.timeoutMs);
    const signal = deadline.signal;
    const pending = exchangeOnce(exchange, signal);
    inFlight.add(pending);
    try {
      return await pending;
    } catch (err) {
      if (signal.aborted) throw timeoutError(exchange.method, url, exchange.timeoutMs);
      if (err instanceof VmmError) throw err;
      if (UNREACHABLE_CODES.has(errnoOf(err))) throw unreachableError(exchange.method, url, err);
      throw protocolError(exchange.method, `request to ${url} failed: ${describeError(err)}`, err);
    } finally {
      clearTimeout(timer);
      inFlight.delete(pending);
    }
  }

  // Like undici's Agent.close(): calls already sent finish, then every connection is closed.
  async function close(): Promise<void> {
    await Promise.allSettled([...inFlight]);
    agent.destroy();
  }

  return { url, send, close };
}

// Net errors come as they are, but a wrapped one carries its errno in `cause`.
function errnoOf(err: unknown): string {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && UNREACHABLE_CODES.has(code)) return code;
  }
  return '';
}
