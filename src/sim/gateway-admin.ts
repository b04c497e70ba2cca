// The gateway's admin server over plain HTTP (dstack/gateway/src/main.rs mounts the Admin prpc
// service at `/` and `/prpc`, trimming `Admin.`; admin_auth.rs puts the shared token check in
// front of every route). JSON mode only: a protobuf-mode call gets a 400 saying so.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type * as z from 'zod';
import { encodeError, isJsonMode } from '../vmm/codec.ts';
import type { GatewayGate } from './gateway-faults.ts';
import { adminMethods, EmptySchema, isAdminMethod, type AdminMethod } from '../gateway/admin-messages.ts';
import { GatewayRejection } from './gateway-store.ts';
import { listenServer, readBody, type BoundServer } from './http-server.ts';
import { guardRequests } from './vmm-auth.ts';

type Spec<M extends AdminMethod> = (typeof adminMethods)[M];

// A handler per method, typed by its request and reply schemas.
export type AdminHandlers = {
  [M in AdminMethod]: (request: z.output<Spec<M>['request']>) => z.input<Spec<M>['response']> | Promise<z.input<Spec<M>['response']>>;
};

// What the admin server serves, where, and behind which token.
export type AdminServerOptions = { host: string; port: number; token: string; handlers: AdminHandlers; gate: GatewayGate };

// Bind the admin server.
export async function startAdminServer(options: AdminServerOptions): Promise<BoundServer> {
  const server = createServer(guardRequests([options.token], 'dstack-gateway admin', (req, res, url) => serve(options, req, res, url)));
  return listenServer(server, { host: options.host, port: options.port });
}

async function serve(options: AdminServerOptions, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const httpMethod = req.method ?? 'GET';
  const body = await readBody(req);
  if (httpMethod === 'GET' && url.pathname === '/') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('dstack-gateway admin (simulated by dstack-supervisor)\n');
    return;
  }
  if (httpMethod !== 'GET' && httpMethod !== 'POST') {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found');
    return;
  }
  const name = url.pathname.replace(/^\/prpc\//, '/').slice(1).replace(/^Admin\./, '');
  const json = isJsonMode({ method: httpMethod, query: url.search, contentType: req.headers['content-type'] });
  if (!json) {
    res.writeHead(400, { 'content-type': 'application/octet-stream' }).end(encodeError('the simulated gateway answers JSON mode only (send Content-Type: application/json or add ?json)', 'protobuf'));
    return;
  }
  try {
    const reply = await call(options, name, httpMethod === 'GET' ? undefined : body);
    res.writeHead(200, { 'content-type': 'application/json' }).end(reply);
  } catch (err) {
    res.writeHead(400, { 'content-type': 'application/json' }).end(encodeError(err instanceof Error ? err.message : String(err), 'json'));
  }
}

// Decode, run (through the fault gate) and encode one call. A GET carries no request message
// here; only methods taking Empty are useful that way (upstream reads fields from the query).
async function call(options: AdminServerOptions, name: string, body: Buffer | undefined): Promise<string> {
  if (!isAdminMethod(name)) throw new GatewayRejection(`Method not found: ${name}`);
  const spec = adminMethods[name];
  const request = spec.request.safeParse(decodeJson(body));
  if (!request.success) throw new GatewayRejection(`failed to decode the request: ${request.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const handler = options.handlers[name] as (req: unknown) => unknown;
  const reply = await options.gate(name, () => handler(request.data));
  // serde renders a `()` reply as null.
  if (spec.response === EmptySchema) return 'null';
  return JSON.stringify(spec.response.parse(reply));
}

// An empty body and `null` both mean the default message.
function decodeJson(body: Buffer | undefined): unknown {
  const text = body?.toString('utf8').trim() ?? '';
  if (text === '' || text === 'null') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new GatewayRejection(`failed to decode the request: ${err instanceof Error ? err.message : String(err)}`);
  }
}
