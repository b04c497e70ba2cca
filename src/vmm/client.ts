// Typed prpc client for dstack-vmm: one method per RPC the supervisor uses. It does exactly one
// HTTP exchange per call; retries and rate limits belong in a layer that wraps a VmmClient.
import type * as z from 'zod';
import { describeError } from '../errors.ts';
import { bySlices, decodeError, decodeMessage, encodeMessage, preview, splitRepeatedField, vmmMethods } from './codec.ts';
import type { VmmMethod, WireMode } from './codec.ts';
import { protocolError, rpcFailedError, unauthorizedError, VmmError } from './errors.ts';
import { VmInfoSchema } from './messages.ts';
import type {
  GetInfoResponse,
  GetMetaResponse,
  ImageInfo,
  ListGpusResponse,
  PublicKeyResponse,
  StatusRequestInput,
  StatusResponse,
  UpdateVmRequestInput,
  VmInfo,
  VersionResponse,
  VmConfigurationInput,
} from './messages.ts';
import { tokenHeaders } from './token-file.ts';
import type { Pace } from '../fsx/in-chunks.ts';
import { openVmmTransport } from './transport.ts';

// CreateVm can spend seconds allocating the disk image; anything slower than this is stuck.
const DEFAULT_TIMEOUT_MS = 60_000;

// How to reach dstack-vmm.
export type VmmClientOptions = {
  // unix:/path, tcp:host:port, http://host:port or https://host:port
  url: string;
  // File holding one of vmm.toml [auth].tokens; re-read on every call so a rotated token applies.
  // It must be a regular file of this process's uid, mode 0600 or 0400 (src/vmm/token-file.ts).
  tokenFile?: string;
  // Binary protobuf (the default, what the VMM web UI uses) or JSON (`?json`).
  mode?: WireMode;
  timeoutMs?: number;
};

// vmm.StatusResponse's `repeated VmInfo vms = 1`.
const STATUS_VMS_FIELD = 1;

// Per-call overrides.
// `pace`: awaited between the slices a long reply is decoded in (Status's VMs), for a caller in
// the background.
export type CallOptions = { timeoutMs?: number; pace?: Pace };

// The dstack-vmm RPCs the supervisor uses. Every failure is a VmmError with a stable code.
export type VmmClient = {
  createVm(cfg: VmConfigurationInput, opts?: CallOptions): Promise<{ id: string }>;
  // Returns the app_id derived from the new compose ("" when none was sent), not the VM id.
  updateVm(req: UpdateVmRequestInput, opts?: CallOptions): Promise<{ id: string }>;
  startVm(id: string, opts?: CallOptions): Promise<void>;
  stopVm(id: string, opts?: CallOptions): Promise<void>;
  shutdownVm(id: string, opts?: CallOptions): Promise<void>;
  removeVm(id: string, opts?: CallOptions): Promise<void>;
  status(req?: StatusRequestInput, opts?: CallOptions): Promise<StatusResponse>;
  getInfo(id: string, opts?: CallOptions): Promise<GetInfoResponse>;
  // Hex sha256 of the exact compose_file string, computed by the VMM.
  getComposeHash(cfg: VmConfigurationInput, opts?: CallOptions): Promise<string>;
  listImages(opts?: CallOptions): Promise<ImageInfo[]>;
  getMeta(opts?: CallOptions): Promise<GetMetaResponse>;
  // The GPUs `[cvm.gpu]` lets the VMM attach, each free or not; empty while GPUs are off.
  listGpus(opts?: CallOptions): Promise<ListGpusResponse>;
  version(opts?: CallOptions): Promise<VersionResponse>;
  // `appIdHex` may carry a 0x prefix or upper case; the VMM wants neither.
  getAppEnvEncryptPubKey(appIdHex: string, opts?: CallOptions): Promise<PublicKeyResponse>;
  close(): Promise<void>;
};

type RequestOf<M extends VmmMethod> = z.input<(typeof vmmMethods)[M]['requestSchema']>;
type ResponseOf<M extends VmmMethod> = z.output<(typeof vmmMethods)[M]['responseSchema']>;

// Build a client; no connection is made until the first call.
export function createVmmClient(options: VmmClientOptions): VmmClient {
  const mode = options.mode ?? 'protobuf';
  const defaultTimeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const transport = openVmmTransport(options.url);

  async function authHeaders(method: string): Promise<Record<string, string>> {
    if (options.tokenFile === undefined) return {};
    // No file means no token (a VMM with [auth] off); a 401 then names the missing file.
    return tokenHeaders(method, options.tokenFile);
  }

  async function call<M extends VmmMethod>(method: M, req: RequestOf<M>, opts: CallOptions = {}): Promise<ResponseOf<M>> {
    return decodeReply(method, await exchange(method, req, opts));
  }

  // One request and its reply's body (HTTP 200); every other outcome is a VmmError.
  async function exchange<M extends VmmMethod>(method: M, req: RequestOf<M>, opts: CallOptions): Promise<Buffer> {
    const spec = vmmMethods[method];
    const parsed = spec.requestSchema.safeParse(req);
    if (!parsed.success) {
      throw protocolError(method, `refusing to send an invalid request: ${firstIssue(parsed.error)}`, parsed.error);
    }
    const reply = await transport.send({
      method,
      path: `/prpc/${method}${mode === 'json' ? '?json' : ''}`,
      headers: {
        'content-type': mode === 'json' ? 'application/json' : 'application/octet-stream',
        ...(await authHeaders(method)),
      },
      body: encodeMessage(spec.request, parsed.data, mode),
      timeoutMs: opts.timeoutMs ?? defaultTimeoutMs,
    });
    if (reply.status === 400) throw rpcFailedError(method, readErrorBody(method, reply.body, mode));
    if (reply.status === 401) throw unauthorizedError(method, options.url, options.tokenFile);
    if (reply.status !== 200) {
      throw protocolError(method, `unexpected HTTP ${reply.status} from ${options.url}: ${preview(reply.body)}`);
    }
    return reply.body;
  }

  // Status in protobuf, its VMs decoded a slice at a time with the event loop let go between:
  // beside 5 000 VMs the whole reply took 0.9 s of CPU in one piece, and every file event waited
  // behind it (issue 18).
  async function status(req: StatusRequestInput, opts?: CallOptions): Promise<StatusResponse> {
    if (mode !== 'protobuf') return call('Status', req, opts);
    const body = await exchange('Status', req, opts ?? {});
    const { elements, rest } = splitRepeatedField(vmmMethods.Status.response, body, STATUS_VMS_FIELD);
    const head = decodeReply('Status', rest);
    const slices = await bySlices(elements, (slice) => slice.map(decodeVm), opts?.pace);
    return { ...head, vms: slices.flat() };
  }

  function decodeVm(body: Uint8Array): VmInfo {
    let decoded: unknown;
    try {
      decoded = decodeMessage('vmm.VmInfo', Buffer.from(body.buffer, body.byteOffset, body.byteLength), mode);
    } catch (err) {
      throw protocolError('Status', `unreadable reply: ${describeError(err)}`, err);
    }
    const parsed = VmInfoSchema.safeParse(decoded);
    if (!parsed.success) throw protocolError('Status', `reply does not fit vmm.StatusResponse: vms: ${firstIssue(parsed.error)}`, parsed.error);
    return parsed.data;
  }

  function decodeReply<M extends VmmMethod>(method: M, body: Buffer): ResponseOf<M> {
    const spec = vmmMethods[method];
    let decoded: unknown;
    try {
      decoded = decodeMessage(spec.response, body, mode);
    } catch (err) {
      throw protocolError(method, `unreadable reply: ${describeError(err)}`, err);
    }
    const parsed = spec.responseSchema.safeParse(decoded);
    if (!parsed.success) throw protocolError(method, `reply does not fit ${spec.response}: ${firstIssue(parsed.error)}`, parsed.error);
    // safeParse over a union of schemas loses the per-method link that RequestOf/ResponseOf keep.
    return parsed.data as ResponseOf<M>;
  }

  const byId = async (method: 'StartVm' | 'StopVm' | 'ShutdownVm' | 'RemoveVm', id: string, opts?: CallOptions) => {
    await call(method, { id }, opts);
  };

  return {
    createVm: (cfg, opts) => call('CreateVm', cfg, opts),
    updateVm: (req, opts) => call('UpdateVm', req, opts),
    startVm: (id, opts) => byId('StartVm', id, opts),
    stopVm: (id, opts) => byId('StopVm', id, opts),
    shutdownVm: (id, opts) => byId('ShutdownVm', id, opts),
    removeVm: (id, opts) => byId('RemoveVm', id, opts),
    status: (req = {}, opts) => status(req, opts),
    getInfo: (id, opts) => call('GetInfo', { id }, opts),
    getComposeHash: async (cfg, opts) => (await call('GetComposeHash', cfg, opts)).hash,
    listImages: async (opts) => (await call('ListImages', {}, opts)).images,
    getMeta: (opts) => call('GetMeta', {}, opts),
    listGpus: (opts) => call('ListGpus', {}, opts),
    version: (opts) => call('Version', {}, opts),
    getAppEnvEncryptPubKey: (appIdHex, opts) =>
      call('GetAppEnvEncryptPubKey', { app_id: appIdHex.replace(/^0x/i, '').toLowerCase() }, opts),
    close: () => transport.close(),
  };
}

// The VMM's own message from a 400 body, or a VMM_PROTOCOL error when the body is neither form.
function readErrorBody(method: string, body: Buffer, mode: WireMode): string {
  try {
    return decodeError(body, mode);
  } catch (err) {
    if (err instanceof VmmError) throw protocolError(method, `HTTP 400 with ${err.message}`, err);
    throw err;
  }
}

// `memory: Too big: expected number to be <=4294967295`: one line for the journal, where zod's own
// message is a JSON dump of every issue (issue 13 item 5); the full list rides along as the cause.
function firstIssue(error: z.ZodError): string {
  const [issue, ...rest] = error.issues;
  if (issue === undefined) return 'invalid';
  const path = issue.path.map(String).join('.');
  const more = rest.length === 0 ? '' : ` (and ${rest.length} more)`;
  return `${path === '' ? '' : `${path}: `}${issue.message}${more}`;
}
