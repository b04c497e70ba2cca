// The one place that knows both prpc encodings of dstack-vmm messages: JSON (snake_case names, hex
// bytes) and protobuf binary. The client and the simulated VMM both encode and decode through here,
// so they cannot drift apart. Objects on our side are always the JSON wire shape (messages.ts).
import protobuf from 'protobufjs';
import { describeError } from '../errors.ts';
import { VmmError } from './errors.ts';
import {
  AppIdSchema,
  ComposeHashSchema,
  EmptySchema,
  GetInfoResponseSchema,
  GetMetaResponseSchema,
  IdSchema,
  ImageListResponseSchema,
  ListGpusResponseSchema,
  PublicKeyResponseSchema,
  ResizeVmRequestSchema,
  StatusRequestSchema,
  StatusResponseSchema,
  UpdateVmRequestSchema,
  VersionResponseSchema,
  VmConfigurationSchema,
} from './messages.ts';
import { loadVmmRoot } from './proto.ts';

// Which encoding a request or reply uses on the wire.
export type WireMode = 'protobuf' | 'json';

// A message in its JSON wire shape.
export type WireObject = Record<string, unknown>;

const EMPTY = 'google.protobuf.Empty' as const;

// One RPC's request and reply: protobuf type names and the matching zod schemas.
function rpc<const Req extends string, const Res extends string, ReqSchema, ResSchema>(
  request: Req,
  requestSchema: ReqSchema,
  response: Res,
  responseSchema: ResSchema,
) {
  return { request, requestSchema, response, responseSchema };
}

// Every RPC of proto/vmm_rpc.proto `service Vmm`, with upstream's signatures: the ones the
// supervisor calls, and UpgradeApp, ResizeVm and ListGpus, which only upstream's vmm-cli.py sends
// (the simulator serves them all).
export const vmmMethods = {
  CreateVm: rpc('vmm.VmConfiguration', VmConfigurationSchema, 'vmm.Id', IdSchema),
  UpdateVm: rpc('vmm.UpdateVmRequest', UpdateVmRequestSchema, 'vmm.Id', IdSchema),
  UpgradeApp: rpc('vmm.UpdateVmRequest', UpdateVmRequestSchema, 'vmm.Id', IdSchema),
  ResizeVm: rpc('vmm.ResizeVmRequest', ResizeVmRequestSchema, EMPTY, EmptySchema),
  ListGpus: rpc(EMPTY, EmptySchema, 'vmm.ListGpusResponse', ListGpusResponseSchema),
  StartVm: rpc('vmm.Id', IdSchema, EMPTY, EmptySchema),
  StopVm: rpc('vmm.Id', IdSchema, EMPTY, EmptySchema),
  ShutdownVm: rpc('vmm.Id', IdSchema, EMPTY, EmptySchema),
  RemoveVm: rpc('vmm.Id', IdSchema, EMPTY, EmptySchema),
  Status: rpc('vmm.StatusRequest', StatusRequestSchema, 'vmm.StatusResponse', StatusResponseSchema),
  GetInfo: rpc('vmm.Id', IdSchema, 'vmm.GetInfoResponse', GetInfoResponseSchema),
  GetComposeHash: rpc('vmm.VmConfiguration', VmConfigurationSchema, 'vmm.ComposeHash', ComposeHashSchema),
  ListImages: rpc(EMPTY, EmptySchema, 'vmm.ImageListResponse', ImageListResponseSchema),
  GetMeta: rpc(EMPTY, EmptySchema, 'vmm.GetMetaResponse', GetMetaResponseSchema),
  Version: rpc(EMPTY, EmptySchema, 'vmm.VersionResponse', VersionResponseSchema),
  GetAppEnvEncryptPubKey: rpc('vmm.AppId', AppIdSchema, 'vmm.PublicKeyResponse', PublicKeyResponseSchema),
};

// A prpc method name as it appears in `/prpc/<Method>`.
export type VmmMethod = keyof typeof vmmMethods;

// Type guard for a method name taken from a URL.
export function isVmmMethod(name: string): name is VmmMethod {
  return Object.hasOwn(vmmMethods, name);
}

// hex::decode on the VMM side accepts either case but no 0x prefix.
const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;

function codecError(typeName: string, detail: string, cause?: unknown): VmmError {
  return new VmmError('VMM_PROTOCOL', `invalid ${typeName}: ${detail}`, { cause });
}

function lookup(typeName: string): protobuf.Type {
  try {
    return loadVmmRoot().lookupType(typeName);
  } catch (err) {
    throw codecError(typeName, 'no such message type in proto/', err);
  }
}

function isRecord(value: unknown): value is WireObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// JSON shape -> protobufjs plain object: hex strings become Buffers, nulls count as unset (serde
// writes None as null), unknown keys are dropped like serde does.
function toProtoPlain(type: protobuf.Type, obj: WireObject, path: string): WireObject {
  const out: WireObject = {};
  for (const field of type.fieldsArray) {
    const value = obj[field.name];
    if (value === undefined || value === null) continue;
    const where = `${path}${field.name}`;
    const convert = (item: unknown): unknown => {
      if (field.type === 'bytes') {
        if (typeof item !== 'string' || !HEX_RE.test(item)) {
          throw codecError(type.fullName.slice(1), `${where} must be hex without 0x`);
        }
        return Buffer.from(item, 'hex');
      }
      if (field.resolvedType !== null && 'fieldsArray' in field.resolvedType) {
        if (!isRecord(item)) throw codecError(type.fullName.slice(1), `${where} must be an object`);
        return toProtoPlain(field.resolvedType, item, `${where}.`);
      }
      return item;
    };
    if (field.repeated) {
      if (!Array.isArray(value)) throw codecError(type.fullName.slice(1), `${where} must be an array`);
      out[field.name] = value.map(convert);
    } else {
      out[field.name] = convert(value);
    }
  }
  return out;
}

// protobufjs plain object -> JSON shape, in field order, Buffers as lowercase hex, unset message
// fields left out.
function toWireShape(type: protobuf.Type, plain: WireObject): WireObject {
  const out: WireObject = {};
  for (const field of type.fieldsArray) {
    const value = plain[field.name];
    if (value === undefined || value === null) continue;
    const convert = (item: unknown): unknown => {
      if (item instanceof Uint8Array) return Buffer.from(item).toString('hex');
      if (field.resolvedType !== null && 'fieldsArray' in field.resolvedType && isRecord(item)) {
        return toWireShape(field.resolvedType, item);
      }
      return item;
    };
    out[field.name] = Array.isArray(value) ? value.map(convert) : convert(value);
  }
  return out;
}

// Build a protobufjs message, refusing wrong types instead of letting fromObject coerce them.
function toMessage(type: protobuf.Type, obj: WireObject): protobuf.Message {
  const plain = toProtoPlain(type, obj, '');
  const problem = type.verify(plain);
  if (problem !== null) throw codecError(type.fullName.slice(1), problem);
  return type.fromObject(plain);
}

// Proto3 view of a message: every non-optional scalar and list present, 64-bit ints as numbers.
function fromMessage(type: protobuf.Type, message: protobuf.Message): WireObject {
  const plain = type.toObject(message, { defaults: true, arrays: true, longs: Number });
  return toWireShape(type, plain);
}

// A Status reply holds one VmInfo per VM, thousands on a big host: the client decodes them and the
// simulated VMM encodes them this many at a time, letting other work run between (issue 18).
export const STATUS_VMS_AT_ONCE = 100;

// `work` on each STATUS_VMS_AT_ONCE-long slice of `items` in turn, with the event loop let go (and
// `pace`, when given, awaited) between slices; the results in order.
export async function bySlices<T, R>(items: readonly T[], work: (slice: T[]) => R, pace?: () => Promise<void>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += STATUS_VMS_AT_ONCE) {
    if (i > 0) {
      await new Promise((resolve) => setImmediate(resolve));
      await pace?.();
    }
    results.push(work(items.slice(i, i + STATUS_VMS_AT_ONCE)));
  }
  return results;
}

// The elements of length-delimited field `fieldNo` of a protobuf body (those of a repeated
// message field, in order) and the body without them: a reply with thousands of elements can
// then be decoded a slice at a time (issue 18).
export function splitRepeatedField(typeName: string, body: Uint8Array, fieldNo: number): { elements: Uint8Array[]; rest: Buffer } {
  const elements: Uint8Array[] = [];
  const rest: Uint8Array[] = [];
  try {
    const reader = protobuf.Reader.create(body);
    while (reader.pos < reader.len) {
      const start = reader.pos;
      const tag = reader.uint32();
      if (tag >>> 3 === fieldNo && (tag & 7) === 2) {
        elements.push(reader.bytes());
        continue;
      }
      reader.skipType(tag & 7);
      rest.push(body.subarray(start, reader.pos));
    }
  } catch (err) {
    throw codecError(typeName, `not a protobuf ${typeName} body (${describeError(err)})`, err);
  }
  return { elements, rest: Buffer.concat(rest) };
}

// Encode a JSON-shape object as a request or reply body in `mode`. JSON carries every field with
// its proto3 default, the way the VMM's serde output does.
export function encodeMessage(typeName: string, obj: WireObject, mode: WireMode): Buffer {
  const type = lookup(typeName);
  const message = toMessage(type, obj);
  if (mode === 'json') return Buffer.from(JSON.stringify(fromMessage(type, message)));
  return Buffer.from(type.encode(message).finish());
}

// Decode a body in `mode` to the JSON-shape object with proto3 defaults filled in. An empty body,
// `{}` and `null` all mean the default message (docs/dstack.md §1.2: Empty replies may have no body).
export function decodeMessage(typeName: string, body: Buffer, mode: WireMode): WireObject {
  const type = lookup(typeName);
  if (mode === 'protobuf') {
    try {
      return fromMessage(type, type.decode(body));
    } catch (err) {
      throw codecError(typeName, `not a protobuf ${typeName} body (${describeError(err)})`, err);
    }
  }
  const text = body.toString('utf8').trim();
  let parsed: unknown = null;
  if (text !== '') {
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw codecError(typeName, `body is not JSON (${describeError(err)})`, err);
    }
  }
  if (parsed === null) parsed = {};
  if (!isRecord(parsed)) throw codecError(typeName, 'JSON body is not an object');
  return fromMessage(type, toMessage(type, parsed));
}

// The request facts that decide the encoding (ra-rpc `RpcRequest` + `handle_prpc_impl`).
export type JsonModeRequest = {
  method: string;
  // Raw query string, with or without the leading '?'.
  query?: string | undefined;
  contentType?: string | undefined;
};

// JSON mode is on for GET, for a first `json` query value of "", "true" or "1", or for an
// application/json content type (parameters such as charset ignored).
export function isJsonMode(req: JsonModeRequest): boolean {
  if (req.method.toUpperCase() === 'GET') return true;
  const json = new URLSearchParams((req.query ?? '').replace(/^\?/, '')).get('json');
  if (json === '' || json === 'true' || json === '1') return true;
  const mediaType = (req.contentType ?? '').split(';')[0]?.trim().toLowerCase();
  return mediaType === 'application/json';
}

// The body of a 400 reply: pretty-printed `{"error": ...}` in JSON mode (serde_json pretty, two
// spaces), prpc.PrpcError in binary mode.
export function encodeError(message: string, mode: WireMode): Buffer {
  if (mode === 'json') return Buffer.from(JSON.stringify({ error: message }, null, 2));
  return encodeMessage('prpc.PrpcError', { message }, 'protobuf');
}

// The VMM's message from a 400 body. Tries `mode` first and then the other encoding, because
// ra-rpc encodes early failures by the query alone and handler errors by query or content type.
export function decodeError(body: Buffer, mode: WireMode): string {
  const order: WireMode[] = mode === 'json' ? ['json', 'protobuf'] : ['protobuf', 'json'];
  for (const candidate of order) {
    const message = tryDecodeError(body, candidate);
    if (message !== undefined) return message;
  }
  throw codecError('prpc error body', `neither {"error": ...} nor prpc.PrpcError: ${preview(body)}`);
}

function tryDecodeError(body: Buffer, mode: WireMode): string | undefined {
  if (mode === 'json') {
    try {
      const parsed: unknown = JSON.parse(body.toString('utf8'));
      return isRecord(parsed) && typeof parsed.error === 'string' ? parsed.error : undefined;
    } catch {
      return undefined;
    }
  }
  // A JSON object would also "decode" as garbage protobuf; never read one as PrpcError.
  if (body[0] === 0x7b) return undefined;
  try {
    const message = decodeMessage('prpc.PrpcError', body, 'protobuf').message;
    return typeof message === 'string' ? message : undefined;
  } catch {
    return undefined;
  }
}

// The first bytes of a body for an error message, printable.
export function preview(body: Buffer): string {
  const text = body.subarray(0, 200).toString('utf8').replace(/[^\x20-\x7e]/g, '.');
  return body.length > 200 ? `${text}...` : text === '' ? '(empty body)' : text;
}
