// The simulated dstack-vmm's HTTP face on a unix socket: `/prpc/<Method>` in JSON and protobuf
// modes, the 400/401 bodies, `/logs`, and the headers every reply carries (docs/dstack.md §1). Encoding
// goes through src/vmm/codec.ts, the same code the client uses.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { rm } from 'node:fs/promises';
import { bySlices, decodeMessage, encodeError, encodeMessage, isJsonMode, isVmmMethod, vmmMethods, type WireMode } from '../vmm/codec.ts';
import { loadVmmRoot } from '../vmm/proto.ts';
import type { CallTarget, FaultGate, ServerControl } from './faults.ts';
import { listenServer, readBody, type BoundServer } from './http-server.ts';
import { VmmRejection } from './vm-rules.ts';
import { guardRequests } from './vmm-auth.ts';
import type { VmmHandlers } from './vmm-dispatch.ts';
import { SIM_VERSION } from './vmm-queries.ts';

// What the server serves and how it is protected.
export type VmmServerOptions = {
  socketPath: string;
  handlers: VmmHandlers;
  gate: FaultGate;
  logsOf: (id: string) => string[] | undefined;
  // The guest agent's Info of a VM, as `/guest/Info` proxies it; a string is the refusal.
  guestInfoOf: (id: string) => Record<string, unknown> | string;
  // `[auth] tokens`; none (or all empty) means auth is off.
  tokens?: string[];
};

// A running server: its `unix:` URL, close(), and the down/up control a VMM restart uses.
export type VmmServer = { url: string; close: () => Promise<void>; control: ServerControl };

// ra-rpc's per-method body limit.
const BODY_LIMIT = 10 * 1024 * 1024;

// Start serving on `socketPath` (a stale socket file is replaced, like vmm.toml `reuse = true`).
export async function startVmmServer(options: VmmServerOptions): Promise<VmmServer> {
  const guarded = guardRequests(options.tokens ?? [], 'dstack-vmm API', (req, res, url) => serve(options, req, res, url));
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    res.setHeader('x-app-version', SIM_VERSION.version);
    res.setHeader('x-accel-buffering', 'no');
    guarded(req, res);
  };
  let bound: BoundServer | undefined;
  const up = async (): Promise<void> => {
    await rm(options.socketPath, { force: true });
    bound = await listenServer(createServer(handle), { path: options.socketPath });
  };
  const down = async (): Promise<void> => {
    await bound?.close();
    bound = undefined;
  };
  await up();
  return { url: `unix:${options.socketPath}`, close: down, control: { up, down } };
}

async function serve(options: VmmServerOptions, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const body = await readBody(req);
  const method = req.method ?? 'GET';
  if (url.pathname.startsWith('/prpc/') && (method === 'POST' || method === 'GET')) {
    const name = url.pathname.slice('/prpc/'.length).replace(/^Teepod\./, '');
    const json = isJsonMode({ method, query: url.search, contentType: req.headers['content-type'] });
    const mode: WireMode = json ? 'json' : 'protobuf';
    try {
      const reply = await callMethod(options, name, method === 'GET' ? queryBody(name, url.searchParams) : body, mode);
      res.writeHead(200, { 'content-type': contentType(mode) }).end(reply);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      res.writeHead(400, { 'content-type': contentType(mode) }).end(encodeError(message, mode));
    }
    return;
  }
  // upstream mounts the guest agent's proxied API at `/guest` (dstack/vmm/src/main.rs), prpc JSON.
  if (method === 'POST' && /^\/guest\/(ProxiedGuestApi\.)?Info$/.test(url.pathname)) {
    const id = (JSON.parse(body.length === 0 ? '{}' : body.toString('utf8')) as { id?: unknown }).id;
    const info = options.guestInfoOf(typeof id === 'string' ? id : '');
    const [status, reply] = typeof info === 'string' ? [400, { error: info }] : [200, info];
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(reply));
    return;
  }
  if (method === 'GET' && url.pathname === '/logs') {
    serveLogs(options, url.searchParams, res);
    return;
  }
  if (method === 'GET' && url.pathname === '/') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('dstack-vmm (simulated by dstack-supervisor)\n');
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found');
}

// Decode, run (through the fault gate) and encode one call. Empty replies are `null` in JSON
// mode, as serde renders `()`; clients must accept it.
async function callMethod(options: VmmServerOptions, name: string, body: Buffer | Record<string, unknown>, mode: WireMode): Promise<Buffer> {
  if (!isVmmMethod(name)) throw new VmmRejection(`Method not found: ${name}`);
  const spec = vmmMethods[name];
  if (Buffer.isBuffer(body) && body.length > BODY_LIMIT) throw new VmmRejection('request body is too large');
  const wire = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
  const request = spec.requestSchema.parse(decodeMessage(spec.request, wire, Buffer.isBuffer(body) ? mode : 'json'));
  const handler = options.handlers[name] as (req: typeof request) => Record<string, unknown>;
  const reply = await options.gate(name, () => handler(request), targetOf(request));
  if (mode === 'json' && spec.response === 'google.protobuf.Empty') return Buffer.from('null');
  if (name === 'Status' && mode === 'protobuf') return encodeStatusInSlices(reply);
  return encodeMessage(spec.response, spec.responseSchema.parse(reply) as Record<string, unknown>, mode);
}

// Status in protobuf, its VMs checked and encoded a slice at a time with the event loop let go
// between, so other calls are served meanwhile, as dstack-vmm's worker threads serve them: in one
// piece it held every other call ~100-190 ms beside 5 000 VMs (issue 18), a wait the real VMM does
// not impose. A protobuf body is its fields one after another, so the slices' `vms` followed by the
// other fields is the body one piece would be.
export async function encodeStatusInSlices(reply: Record<string, unknown>): Promise<Buffer> {
  const { Status } = vmmMethods;
  const { vms = [], ...rest } = reply as { vms?: unknown[] };
  const parts = await bySlices(vms, (slice) => encodeMessage(Status.response, { vms: Status.responseSchema.shape.vms.parse(slice) }, 'protobuf'));
  parts.push(encodeMessage(Status.response, Status.responseSchema.omit({ vms: true }).parse(rest), 'protobuf'));
  return Buffer.concat(parts);
}

// upstream's tail when `lines` is not given (main_routes.rs DEFAULT_TAIL_LINES).
const DEFAULT_TAIL_LINES = 10_000;

// `GET /logs?id=&follow=&ansi=&lines=&ch=` as upstream's vm_logs answers it (dstack/vmm/src/
// main_routes.rs): 404 "VM not found" for an unknown id, 400 "Unknown channel <ch>" for a channel
// other than serial (the default), stdout or stderr, else the last `lines` lines as plain text.
function serveLogs(options: VmmServerOptions, params: URLSearchParams, res: ServerResponse): void {
  const lines = options.logsOf(params.get('id') ?? '');
  if (lines === undefined) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('VM not found');
  const channel = params.get('ch') ?? 'serial';
  if (!['serial', 'stdout', 'stderr'].includes(channel)) return void res.writeHead(400, { 'content-type': 'text/plain' }).end(`Unknown channel ${channel}`);
  const tail = Number(params.get('lines') ?? DEFAULT_TAIL_LINES);
  const shown = channel !== 'serial' ? [] : Number.isInteger(tail) && tail >= 0 ? lines.slice(Math.max(0, lines.length - tail)) : lines;
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(shown.map((l) => `${l}\n`).join(''));
}

// The VM a request is about: its `id` (a VM id in every request that has one) and, for
// CreateVm, its `name`.
function targetOf(request: unknown): CallTarget {
  const { id, name } = (request ?? {}) as { id?: unknown; name?: unknown };
  return { ...(typeof id === 'string' ? { vmId: id } : {}), ...(typeof name === 'string' ? { name } : {}) };
}

// A GET carries its request as the query string: scalar fields by name, repeated ones repeated.
function queryBody(name: string, params: URLSearchParams): Record<string, unknown> {
  if (!isVmmMethod(name)) return {};
  const typeName = vmmMethods[name].request;
  if (typeName === 'google.protobuf.Empty') return {};
  const out: Record<string, unknown> = {};
  for (const field of loadVmmRoot().lookupType(typeName).fieldsArray) {
    const values = params.getAll(field.name);
    if (values.length === 0 || field.resolvedType !== null) continue;
    const convert = (v: string): unknown =>
      field.type === 'bool' ? v === '' || v === 'true' || v === '1' : field.type === 'string' || field.type === 'bytes' ? v : Number(v);
    out[field.name] = field.repeated ? values.map(convert) : convert(values[0] as string);
  }
  return out;
}

function contentType(mode: WireMode): string {
  return mode === 'json' ? 'application/json' : 'application/octet-stream';
}

