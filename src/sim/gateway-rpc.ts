// The gateway's main RPC port as a host-side readiness probe sees it (dstack/gateway/src/main.rs,
// web_routes.rs, main_service.rs `info`): HTTPS with `GET /health` answering `OK` without
// credentials, and `Info` in JSON mode with the version in `X-App-Version`. RegisterCvm (mutual
// RA-TLS from guests) is not served: the simulated host registers instances directly.
import { createServer } from 'node:https';
import { issueServerCert, type HostNames, type Issued } from '../init/tls.ts';
import { encodeError } from '../vmm/codec.ts';
import { InfoResponseSchema } from '../gateway/admin-messages.ts';
import { listenServer, type BoundServer } from './http-server.ts';

// The version the simulated gateway reports.
export const SIM_GATEWAY_VERSION = '0.5.11-sim';

// Where the RPC port listens, the names its certificate covers, and what Info reports.
export type RpcServerOptions = {
  host: string;
  port: number;
  ca: Issued;
  names: HostNames;
  info: () => { base_domain: string; external_port: number };
};

// Bind the RPC port with a fresh certificate from the CA (upstream: an RA-TLS certificate from
// the guest agent, chained to the KMS root).
export async function startRpcServer(options: RpcServerOptions): Promise<BoundServer> {
  const identity = issueServerCert(options.names, options.ca, Date.now());
  const server = createServer({ key: identity.keyPem, cert: identity.certPem }, (req, res) => {
    res.setHeader('x-app-version', SIM_GATEWAY_VERSION);
    const path = new URL(req.url ?? '/', 'https://localhost').pathname;
    if (req.method === 'GET' && path === '/health') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('OK');
      return;
    }
    if (path === '/prpc/Info' || path === '/prpc/Tproxy.Info') {
      const info = InfoResponseSchema.parse({ ...options.info(), app_address_ns_prefix: '_dstack-app-address', version: SIM_GATEWAY_VERSION });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(info));
      return;
    }
    if (path.startsWith('/prpc/')) {
      res.writeHead(400, { 'content-type': 'application/json' }).end(encodeError(`Method not found: ${path.slice('/prpc/'.length)}`, 'json'));
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found');
  });
  return listenServer(server, { host: options.host, port: options.port });
}
