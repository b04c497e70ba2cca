// Tier 2 test steps the gateway rule tests share: a gateway.toml for the harness, the VM and
// status reads, and requests on an app's direct port and through the gateway's proxy.
import { request as httpsRequest } from 'node:https';
import { chmod, mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { composeText, freePorts, startHarness, waitUntil, type Harness, type HarnessOptions } from './harness.ts';
import { readGatewayStatus } from '../../src/status/store.ts';
import type { VmInfo } from '../../src/vmm/messages.ts';

export const DOMAIN = 'apps.example.test';
export const gatewayEnabled = (vm: VmInfo | undefined) => vm !== undefined && JSON.parse(vm.configuration!.compose_file).gateway_enabled === true;
export const byName = (h: Harness, name: string) => h.sim.state.list().find((v) => v.name === name);

export async function direct(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/`);
  return res.text();
}

// An HTTPS request through the gateway's proxy with the given SNI, trusting the host CA.
export function viaGateway(proxyPort: number, servername: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port: proxyPort, servername, ca, path: '/', headers: { host: servername } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

// The token file's content writeGatewayToml writes.
export const TOKEN_TEXT = 'cf-token-for-tests-0123456789abcdef';

// gateway.toml in ACME mode for `domain` (DOMAIN), the host at 127.0.0.1 (public_ip: where the
// simulated DNS points names under the simulated gateway's domain), with `extra` top-level lines
// (or tables) and `certificate` lines in [certificate]; the token file beside it unless
// `withToken` is false.
export async function writeGatewayToml(
  h: Harness,
  ports: { rpc: number; proxy: number },
  options: { extra?: string[]; withToken?: boolean; domain?: string; email?: string; certificate?: string[] } = {},
): Promise<void> {
  const { extra = [], withToken = true, domain = DOMAIN, email = 'ops@example.test', certificate = [] } = options;
  const dir = h.config.gateway_dir;
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const token = join(dir, 'cloudflare.token');
  if (withToken) {
    await writeFile(token, `${TOKEN_TEXT}\n`, { mode: 0o600 });
    await chmod(token, 0o600);
  }
  const file = join(dir, 'gateway.toml');
  const lines = [`domain = "${domain}"`, 'public_ip = "127.0.0.1"', `rpc_port = ${ports.rpc}`, `proxy_port = ${ports.proxy}`, ...extra];
  // Replaced whole (a rename), so a pass that reads it while a test changes it sees one or the other.
  await writeFile(`${file}.new`, [...lines, '[certificate]', `email = "${email}"`, `token_file = "${token}"`, ...certificate, ''].join('\n'));
  await chmod(`${file}.new`, 0o644);
  await rename(`${file}.new`, file);
}


// A harness with one app, shop, that asks for the gateway, running on its direct port. Issuance is
// slow enough (500 ms) for a test to set a fault on the gateway between its first launch and it.
export async function withGatewayApp(
  t: Parameters<typeof startHarness>[0],
  sim: HarnessOptions['sim'] = {},
  apps: HarnessOptions['apps'] = {},
): Promise<{ h: Harness; port: number; ports: { rpc: number; proxy: number } }> {
  const h = await startHarness(t, { sim: { gatewayIssueDelayMs: 500, ...sim }, apps });
  const [port, rpc, proxy] = await freePorts(3);
  await h.put('shop.yaml', `${composeText(port!)}x-dstack:\n  gateway: true\n`);
  await h.start();
  await h.deployed('shop');
  return { h, port: port!, ports: { rpc: rpc!, proxy: proxy! } };
}

// `_gateway.json` once it is in `phase` with a reason matching `reason`.
// Serving with no app being moved, and `app`'s VM on the gateway and booted.
export const settledOnGateway = (h: Harness, app: string) =>
  waitUntil(async () => {
    const status = await readGatewayStatus(h.config.state_dir);
    const vm = byName(h, app);
    return status?.phase === 'serving' && status.switching === null && gatewayEnabled(vm) && vm?.status === 'running' && vm.boot_progress === 'done' ? status : undefined;
  }, `${app} settled on the serving gateway`, 30_000);

export const gatewayStatus = (h: Harness, phase: string, reason: RegExp) =>
  waitUntil(async () => {
    const status = await readGatewayStatus(h.config.state_dir);
    return status?.phase === phase && reason.test(status.reason) ? status : undefined;
  }, `gateway ${phase} matching ${reason}`, 30_000);
