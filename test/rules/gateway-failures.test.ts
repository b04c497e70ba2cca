// Issue 14's failure modes, each with the operator-facing message in the gateway's status and the
// journal: apps stay on their direct ports, and the gateway CVM is never recreated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile, rename } from 'node:fs/promises';
import { startHarness, composeText, freePorts, waitUntil, type Harness } from '../helpers/harness.ts';
import { readGatewayStatus } from '../../src/status/store.ts';
import { byName, direct, gatewayEnabled, writeGatewayToml } from '../helpers/gateway.ts';
import type { IssuanceFault } from '../../src/sim/gateway-faults.ts';
import { rescan } from '../helpers/rules.ts';

// A harness with one app that asks for the gateway, running on its direct port. Issuance is slow
// enough (500 ms) for a test to set a fault on the gateway between its first launch and it.
async function withGatewayApp(t: Parameters<typeof startHarness>[0]): Promise<{ h: Harness; port: number; ports: { rpc: number; proxy: number } }> {
  const h = await startHarness(t, { sim: { gatewayIssueDelayMs: 500 } });
  const [port, rpc, proxy] = await freePorts(3);
  await h.put('shop.yaml', `${composeText(port!)}x-dstack:\n  gateway: true\n`);
  await h.start();
  await h.deployed('shop');
  return { h, port: port!, ports: { rpc: rpc!, proxy: proxy! } };
}

const gatewayStatus = (h: Harness, phase: string, reason: RegExp) =>
  waitUntil(async () => {
    const status = await readGatewayStatus(h.config.state_dir);
    return status?.phase === phase && reason.test(status.reason) ? status : undefined;
  }, `gateway ${phase} matching ${reason}`, 30_000);

async function assertAppsStayDirect(h: Harness, port: number): Promise<void> {
  assert.equal(gatewayEnabled(byName(h, 'shop')), false, 'shop stays on direct ports');
  assert.match(await direct(port), /app shop/);
}

const ISSUANCE: Array<[IssuanceFault, RegExp]> = [
  ['dns-forbidden', /Authentication error.*the DNS token cannot edit the zone's records: give it Zone > DNS > Edit/],
  ['rate-limited', /rateLimited.*Let's Encrypt's rate limit: issuance is retried later and the gateway CVM is kept/],
  ['no-zone', /no matching zone found.*no Cloudflare zone the token can see contains the domain/],
];

for (const [fault, message] of ISSUANCE) {
  test(`no certificate (${fault}): the status says why and what to do, apps stay on direct ports, the gateway CVM is kept`, { timeout: 60_000 }, async (t) => {
    const { h, port, ports } = await withGatewayApp(t);
    await writeGatewayToml(h, ports);
    const vm = await h.until((vms) => vms.some((v) => v.name === 'dstack-gateway'), 'the gateway CVM created');
    const id = vm.find((v) => v.name === 'dstack-gateway')!.id;
    const faults = await waitUntil(() => h.sim.gateways.faults(id), 'the gateway launched');
    faults.setIssuanceFault(fault);
    const status = await gatewayStatus(h, 'certificate', message);
    assert.equal(status.serving, false);
    assert.ok(h.logs.some((l) => l.priority === 4 && l.fields.APP === 'gateway' && message.test(String(l.fields.msg))), 'a warning in the journal');
    await assertAppsStayDirect(h, port);
    const calls = h.sim.faults.callLog().filter((c) => c.name === 'dstack-gateway');
    assert.deepEqual(calls.filter((c) => c.method === 'CreateVm' || c.method === 'RemoveVm').map((c) => c.method), ['CreateVm'], 'created once, never recreated');
  });
}

test('a missing token file: gateway.toml is refused naming the key, nothing is deployed', { timeout: 60_000 }, async (t) => {
  const { h, port, ports } = await withGatewayApp(t);
  await writeGatewayToml(h, ports, { withToken: false });
  const status = await gatewayStatus(h, 'invalid', /\[certificate\] token_file: .*cloudflare\.token/);
  assert.equal(status.serving, false);
  assert.equal(byName(h, 'dstack-gateway'), undefined, 'no gateway CVM');
  await assertAppsStayDirect(h, port);
});

test('a token file others can read is refused with the chmod to run', { timeout: 60_000 }, async (t) => {
  const { h, port, ports } = await withGatewayApp(t);
  await writeGatewayToml(h, ports);
  // Replaced before the supervisor reads it: same name, mode 0644.
  const token = `${h.config.gateway_dir}/cloudflare.token`;
  await writeFile(`${token}.new`, await readFile(token), { mode: 0o644 });
  await rename(`${token}.new`, token);
  await gatewayStatus(h, 'invalid', /token_file: .*chmod 600/);
  await assertAppsStayDirect(h, port);
});

test('a gateway CVM whose boot is denied: its boot error is in the status and it is started again with backoff', { timeout: 60_000 }, async (t) => {
  const { h, port, ports } = await withGatewayApp(t);
  // No OS image is allowed from now on: the next guest to boot (the gateway) is denied.
  const doc = JSON.parse(await readFile(h.config.auth.config_path, 'utf8'));
  await writeFile(h.config.auth.config_path, JSON.stringify({ ...doc, osImages: [] }, null, 2));
  await writeGatewayToml(h, ports);
  const status = await gatewayStatus(h, 'failed', /the gateway CVM .* failed to boot \(.*Boot denied.*\)/);
  assert.equal(status.serving, false);
  await assertAppsStayDirect(h, port);
});

test('self-signed (and no-domain) mode says plainly that it is not supported yet, and deploys nothing', { timeout: 60_000 }, async (t) => {
  const { h, port, ports } = await withGatewayApp(t);
  const dir = h.config.gateway_dir;
  await mkdir(dir, { recursive: true });
  await writeFile(`${dir}/gateway.toml`, `public_ip = "203.0.113.7"\nrpc_port = ${ports.rpc}\nproxy_port = ${ports.proxy}\n`, { mode: 0o644 });
  const status = await gatewayStatus(h, 'invalid', /mode = "self-signed" .* is not supported yet.*set domain and mode = "acme"/);
  assert.equal(status.serving, false);
  assert.equal(byName(h, 'dstack-gateway'), undefined, 'no gateway CVM');
  await assertAppsStayDirect(h, port);
});

// An app that never registers (the gateway refuses it): its guest boots anyway and keeps trying,
// on its direct port meanwhile. The status says so with a stable code; the app is not restarted,
// which would kill it again and again while the gateway has a problem.
test('an app the gateway will not register runs on its direct port, its status says why, and it is not restarted', { timeout: 60_000 }, async (t) => {
  const { h, ports } = await withGatewayApp(t);
  await writeGatewayToml(h, ports);
  await gatewayStatus(h, 'serving', /serving/);
  const gatewayVm = byName(h, 'dstack-gateway')!;
  h.sim.gateways.faults(gatewayVm.id)!.failNext('RegisterCvm', { count: 1000, message: 'registrations are closed' });
  const [port] = await freePorts(1);
  await h.put('blog.yaml', `${composeText(port!)}x-dstack:\n  gateway: true\n`);
  const status = await waitUntil(async () => (await h.statuses()).find((s) => s.app === 'blog' && s.phase === 'running' && s.code === 'GATEWAY_UNREGISTERED'), 'blog running, unregistered', 30_000);
  assert.match(status.last_error ?? '', /dstack-gateway registration failed, the app has no ingress route: .*registrations are closed/);
  assert.match(await direct(port!), /app blog/);
  const starts = () => h.sim.faults.callLog().filter((c) => c.name === 'blog' && (c.method === 'StartVm' || c.method === 'CreateVm')).length;
  const before = starts();
  await rescan(h);
  await rescan(h);
  assert.equal(starts(), before, 'not restarted');
});
