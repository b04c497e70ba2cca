// A stand-in for auth-simple: the same three endpoints, the same rules (boot-auth-rules.ts) and
// the same hot reload, so the supervisor's allowlist writes are judged as the real webhook would.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { AuthConfigSchema, type AuthConfig } from '../auth/schema.ts';
import { BootInfoSchema, decideBoot, type BootKind } from './boot-auth-rules.ts';
import { listenServer, readBody } from './http-server.ts';

// Options: the auth-config.json to judge by, and where to bind (loopback, any free port).
export type AuthWebhookOptions = { configPath: string; host?: string; port?: number };

// A running webhook: its base URL (`http://127.0.0.1:PORT`) and close().
export type AuthWebhook = { url: string; close: () => Promise<void> };

// Start the webhook. Every request re-reads the config file, like auth-simple does.
export async function startAuthWebhook(options: AuthWebhookOptions): Promise<AuthWebhook> {
  const host = options.host ?? '127.0.0.1';
  const server = createServer((req, res) => {
    handle(options.configPath, req, res).catch((err: unknown) => {
      sendJson(res, 500, { status: 'error', message: err instanceof Error ? err.message : String(err) });
    });
  });
  const bound = await listenServer(server, { host, port: options.port ?? 0 });
  return { url: `http://${host}:${bound.port}`, close: bound.close };
}

// Load and parse the config; a missing, torn or invalid file gives the all-default config,
// which denies every boot (upstream logs and carries on, so we do the same, fail-closed).
export async function loadAuthConfig(configPath: string): Promise<AuthConfig> {
  try {
    return AuthConfigSchema.parse(JSON.parse(await readFile(configPath, 'utf8')));
  } catch {
    return AuthConfigSchema.parse({});
  }
}

const BOOT_PATHS: Record<string, BootKind> = { '/bootAuth/app': 'app', '/bootAuth/kms': 'kms' };

async function handle(configPath: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://webhook').pathname;
  const body = (await readBody(req)).toString('utf8');
  if (req.method === 'GET' && path === '/') {
    const config = await loadAuthConfig(configPath);
    sendJson(res, 200, {
      status: 'ok',
      kmsContractAddr: config.kmsContractAddr,
      gatewayAppId: config.gatewayAppId,
      chainId: config.chainId,
      appAuthImplementation: config.appImplementation,
      appImplementation: config.appImplementation,
    });
    return;
  }
  const kind = BOOT_PATHS[path];
  if (req.method !== 'POST' || kind === undefined) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('404 Not Found');
    return;
  }
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    res.writeHead(400, { 'content-type': 'text/plain' }).end('Malformed JSON in request body');
    return;
  }
  const parsed = BootInfoSchema.safeParse(json);
  if (!parsed.success) {
    // zValidator's failure shape: the safeParse result itself, with status 400.
    sendJson(res, 400, { success: false, error: { name: 'ZodError', issues: parsed.error.issues } });
    return;
  }
  sendJson(res, 200, decideBoot(await loadAuthConfig(configPath), parsed.data, kind));
}


function sendJson(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
}
