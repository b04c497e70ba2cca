// The gateway CVM's admin API and its health endpoint, as the supervisor calls them: prpc in JSON
// mode (`POST /prpc/<Method>?json`), the admin token as a bearer (images that predate admin
// authentication ignore it, which is why the admin port is published on host loopback only). Loaded
// only when Tier 2 is on, so an idle host without a gateway does not carry undici's parser.
import { Agent, request } from 'undici';
import type * as z from 'zod';
import { describeError } from '../errors.ts';
import { GatewayAdminError } from './errors.ts';
import { adminMethods, type AdminMethod } from './admin-messages.ts';

type Request<M extends AdminMethod> = z.input<(typeof adminMethods)[M]['request']>;
type Response<M extends AdminMethod> = z.output<(typeof adminMethods)[M]['response']>;

export { GatewayAdminError };

export type GatewayAdmin = {
  call<M extends AdminMethod>(method: M, body: Request<M>): Promise<Response<M>>;
  // `GET /health` on the gateway's main RPC port (HTTPS, certificate chained to the KMS root, so
  // not verified here: the question is only whether the service answers).
  health(): Promise<void>;
  close(): Promise<void>;
};

export type GatewayAdminOptions = { adminUrl: string; rpcUrl: string; token: string; timeoutMs?: number };

export function createGatewayAdmin(options: GatewayAdminOptions): GatewayAdmin {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const agent = new Agent({ connect: { rejectUnauthorized: false }, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  const send = async (url: string, init: { method: 'GET' | 'POST'; body?: string; headers?: Record<string, string> }) => {
    try {
      const res = await request(url, { dispatcher: agent, ...init, signal: AbortSignal.timeout(timeoutMs) });
      return { status: res.statusCode, text: await res.body.text() };
    } catch (err) {
      throw new GatewayAdminError('GATEWAY_UNREACHABLE', `the gateway at ${new URL(url).origin} does not answer (${describeError(err)})`);
    }
  };
  return {
    async call(method, body) {
      const url = `${options.adminUrl}/prpc/${method}?json`;
      const headers = { 'content-type': 'application/json', ...(options.token === '' ? {} : { authorization: `Bearer ${options.token}` }) };
      const { status, text } = await send(url, { method: 'POST', body: JSON.stringify(adminMethods[method].request.parse(body)), headers });
      if (status !== 200) {
        const message = errorMessageOf(text);
        throw new GatewayAdminError('GATEWAY_REFUSED', `the gateway refused ${method} (HTTP ${status}): ${message}`, message);
      }
      const parsed = adminMethods[method].response.safeParse(text.trim() === '' ? {} : safeJson(text));
      if (!parsed.success) throw new GatewayAdminError('GATEWAY_PROTOCOL', `the gateway's answer to ${method} is not what its API defines (${parsed.error.issues[0]?.message ?? 'invalid'})`);
      return parsed.data as Response<typeof method>;
    },
    async health() {
      const { status, text } = await send(`${options.rpcUrl}/health`, { method: 'GET' });
      if (status !== 200) throw new GatewayAdminError('GATEWAY_UNREACHABLE', `the gateway's /health answered HTTP ${status}: ${text.trim().slice(0, 200)}`);
    },
    close: () => agent.close(),
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

// prpc errors in JSON mode are `{"error": "..."}`; anything else is shown as it came, shortened.
function errorMessageOf(text: string): string {
  const body = safeJson(text);
  if (typeof body === 'object' && body !== null && 'error' in body && typeof body.error === 'string') return body.error;
  return text.trim().slice(0, 300) || '(no message)';
}
