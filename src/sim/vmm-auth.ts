// dstack-vmm's `[auth]` check (docs/dstack.md §1.5, api-auth `HttpAuthFairing::authorized`): which
// credentials a request may carry, in which order, and the one case with no fallback. The
// gateway's admin API uses the same crate (dstack/gateway/src/admin_auth.rs), so the simulated
// gateway shares it too.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

// The request parts the check reads.
export type AuthRequest = { method: string; headers: Record<string, string | string[] | undefined>; query: URLSearchParams };

// Build the check for `tokens` (empty tokens ignored); with no token at all everything passes.
export function createTokenCheck(tokens: string[]): (req: AuthRequest) => boolean {
  // Stored as SHA-256 and compared in constant time, as upstream does.
  const hashes = tokens.filter((t) => t !== '').map(sha256);
  if (hashes.length === 0) return () => true;
  const matches = (candidate: string): boolean => {
    if (candidate === '') return false;
    const hash = sha256(candidate);
    return hashes.some((known) => timingSafeEqual(known, hash));
  };
  return (req) => {
    const adminToken = header(req, 'x-admin-token');
    if (adminToken !== undefined && matches(adminToken.trim())) return true;
    const authorization = header(req, 'authorization');
    if (authorization?.startsWith('Bearer ')) {
      // A wrong Bearer token is final: no fallback to ?token=.
      return matches(authorization.slice('Bearer '.length).trim());
    }
    if (authorization?.startsWith('Basic ') && basicMatches(authorization.slice('Basic '.length), matches)) return true;
    const queryToken = req.query.get('token');
    return req.method === 'GET' && queryToken !== null && matches(queryToken);
  };
}

// A request listener behind the check: a request without a valid credential gets api-auth's
// 401 (empty body, `WWW-Authenticate: Basic realm="<realm>"`); a failure of `serve` a 500.
export function guardRequests(
  tokens: string[],
  realm: string,
  serve: (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void>,
): (req: IncomingMessage, res: ServerResponse) => void {
  const authorized = createTokenCheck(tokens);
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (!authorized({ method: req.method ?? 'GET', headers: req.headers, query: url.searchParams })) {
      res.writeHead(401, { 'www-authenticate': `Basic realm="${realm}"`, 'content-length': '0' }).end();
      return;
    }
    serve(req, res, url).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(err instanceof Error ? err.message : String(err));
    });
  };
}

// Basic credentials: user:token, or token: with an empty password (htpasswd users unsupported).
function basicMatches(encoded: string, matches: (t: string) => boolean): boolean {
  const decoded = Buffer.from(encoded.trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return false;
  const user = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  return password === '' ? matches(user) : matches(password);
}

function header(req: AuthRequest, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
