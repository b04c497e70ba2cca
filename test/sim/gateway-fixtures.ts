// Shared set-up for the simulated gateway tests: a host CA in the test's temp dir, a gateway on
// loopback ports closed when the test ends, an admin client on the wire, an app listener, and an
// HTTPS request through the proxy with a chosen SNI.
import { createServer } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { readFile } from 'node:fs/promises';
import type { TestContext } from 'node:test';
import { ensureHostCa, type Issued } from '../../src/init/tls.ts';
import { startSimGateway, type SimGateway, type SimGatewayOptions } from '../../src/sim/gateway.ts';
import { listenServer } from '../../src/sim/http-server.ts';
import { defer } from '../helpers/cleanup.ts';
import { makeTempDir } from './fixtures.ts';

export const ADMIN_TOKEN = 'admin-token-for-tests-0123456789';

// A fresh host CA in the test's temp dir, made by init's own helper.
export async function makeCa(t: TestContext): Promise<Issued> {
  const dir = await makeTempDir(t, 'gw-');
  const { paths } = await ensureHostCa(dir, { hostname: 'gw-test' });
  return { certPem: await readFile(paths.caCert, 'utf8'), keyPem: await readFile(paths.caKey, 'utf8') };
}

// A gateway signed by a fresh host CA, closed when the test ends.
export async function startTestGateway(t: TestContext, options: Partial<SimGatewayOptions> = {}): Promise<{ gw: SimGateway; caPem: string }> {
  const ca = await makeCa(t);
  const gw = await startSimGateway({ ca, adminToken: ADMIN_TOKEN, issueDelayMs: 0, ...options });
  defer(t, () => gw.close());
  return { gw, caPem: ca.certPem };
}

// A gateway's admin port, wherever it runs (a SimGateway, or a gateway CVM's published port).
export type AdminTarget = Pick<SimGateway, 'adminUrl'>;

// One admin call's answer.
export type AdminReply = { status: number; body: unknown; headers: Headers };

// POST (or GET) `path` on the admin port with a JSON body and the bearer token unless `headers`
// says otherwise.
export async function adminCall(gw: AdminTarget, path: string, body?: unknown, init: { method?: string; headers?: Record<string, string> } = {}): Promise<AdminReply> {
  const method = init.method ?? 'POST';
  const res = await fetch(`${gw.adminUrl}${path}`, {
    method,
    headers: init.headers ?? { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    ...(method === 'GET' ? {} : { body: body === undefined ? '' : JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : (JSON.parse(text) as unknown), headers: res.headers };
}

// A successful admin call's body; anything but 200 fails the test with the gateway's error.
export async function admin<T = Record<string, unknown>>(gw: AdminTarget, method: string, body?: unknown): Promise<T> {
  const reply = await adminCall(gw, `/prpc/${method}`, body);
  if (reply.status !== 200) throw new Error(`${method}: HTTP ${reply.status} ${JSON.stringify(reply.body)}`);
  return reply.body as T;
}

// An HTTP "app" on a loopback port that names itself and echoes the path and Host header.
export async function startApp(t: TestContext, name: string): Promise<number> {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`${name} ${req.url} host=${req.headers.host}`);
  });
  const bound = await listenServer(server, { host: '127.0.0.1', port: 0 });
  defer(t, () => bound.close());
  return bound.port;
}

// A GET through the proxy on 127.0.0.1 with `servername` as SNI and Host, trusting only `caPem`.
export function httpsGet(port: number, servername: string, caPem: string, path = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, servername, path, ca: caPem, agent: false, headers: { host: servername } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

// A Cloudflare credential set as default, then `domain` advertised on `port`: the bootstrap sequence.
export async function configureDomain(gw: AdminTarget, domain: string, port = 443): Promise<void> {
  await admin(gw, 'CreateDnsCredential', { name: 'cloudflare', provider_type: 'cloudflare', cf_api_token: 'cf-token-0123456789', set_as_default: true });
  await admin(gw, 'AddZtDomain', { domain, port, priority: 100 });
}
