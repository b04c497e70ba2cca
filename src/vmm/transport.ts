// HTTP exchange with dstack-vmm over a unix socket or TCP: dialing, deadlines and the mapping of
// transport failures to VmmError codes. Knows nothing about message encodings.
import { Agent, request } from 'undici';
import { describeError } from '../errors.ts';
import { addressError, protocolError, timeoutError, unreachableError, VmmError } from './errors.ts';

// Where to send requests: the URL origin and, for unix sockets, the socket path.
export type VmmAddress = { baseUrl: string; socketPath?: string };

// Parse a VMM address in vmm.toml form (`unix:<path>`, `tcp:<host>:<port>`) or as an http(s) URL.
export function parseVmmAddress(address: string): VmmAddress {
  if (address.startsWith('unix:')) {
    const socketPath = address.slice('unix:'.length);
    if (socketPath === '') throw addressError(address);
    // The host is ignored on a unix socket; undici still needs one to build the request line.
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
  'UND_ERR_CONNECT_TIMEOUT',
]);

// A reusable connection pool to one VMM; `send` never retries (retry is a separate layer).
export type VmmTransport = {
  url: string;
  send(exchange: Exchange): Promise<Reply>;
  close(): Promise<void>;
};

// Open a transport to `url` (any form parseVmmAddress accepts).
export function openVmmTransport(url: string): VmmTransport {
  const address = parseVmmAddress(url);
  const agent =
    address.socketPath === undefined ? new Agent() : new Agent({ connect: { socketPath: address.socketPath } });

  async function send(exchange: Exchange): Promise<Reply> {
    // Our own timer, cleared when the exchange ends: AbortSignal.timeout()'s stays armed for the
    // whole timeout after every call and woke an idle process once per call (bench/idle.ts).
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), exchange.timeoutMs);
    const signal = deadline.signal;
    try {
      const res = await request(`${address.baseUrl}${exchange.path}`, {
        dispatcher: agent,
        method: 'POST',
        headers: exchange.headers,
        body: exchange.body,
        signal,
      });
      const body = Buffer.from(await res.body.arrayBuffer());
      return { status: res.statusCode, body };
    } catch (err) {
      if (signal.aborted) throw timeoutError(exchange.method, url, exchange.timeoutMs);
      if (err instanceof VmmError) throw err;
      if (UNREACHABLE_CODES.has(errnoOf(err))) throw unreachableError(exchange.method, url, err);
      throw protocolError(exchange.method, `request to ${url} failed: ${describeError(err)}`, err);
    } finally {
      clearTimeout(timer);
    }
  }

  return { url, send, close: () => agent.close() };
}

// undici rethrows net errors as is, but some wrap them in `cause`.
function errnoOf(err: unknown): string {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && UNREACHABLE_CODES.has(code)) return code;
  }
  return '';
}
