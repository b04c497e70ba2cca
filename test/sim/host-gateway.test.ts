// Tier 2 on the simulated host, driven as the supervisor drives a real one: the gateway CVM is
// created through the prpc client with a sealed env, configured through its published admin
// port, and an app that asks for the gateway is reached through the published HTTPS proxy port.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { ensureHostCa } from '../../src/init/tls.ts';
import type { EnvEntry } from '../../src/secrets/dotenv.ts';
import { sealEnv } from '../../src/secrets/seal.ts';
import { hashCompose } from '../../src/sim/vm-rules.ts';
import { createVmmClient } from '../../src/vmm/client.ts';
import type { VmInfo } from '../../src/vmm/messages.ts';
import { defer } from '../helpers/cleanup.ts';
import { freePorts, waitUntil } from '../helpers/harness.ts';
import { appCompose, authConfigFor, makeTempDir, startTestHost, writeJson } from './fixtures.ts';
import { ADMIN_TOKEN, admin, adminCall, configureDomain, httpsGet, type AdminTarget } from './gateway-fixtures.ts';

const KMS_URL = 'https://10.0.2.2:9201';
const GATEWAY_APP_ID = 'ea7e000000000000000000000000000000000a11';
const BASE = 'apps.test';
const IMAGE = 'dstack-0.5.11';
const REGISTRATION_FAILED = 'dstack-gateway registration failed, the app has no ingress route';

type ZtDomains = { domains: { config: { domain: string }; cert_status: { has_cert: boolean; loaded_in_memory: boolean } }[] };
type GatewayStatus = { hosts: { instance_id: string; app_id: string }[] };

// A simulated host with its CA where init puts it, a VMM client, host ports for the gateway
// (rpc, admin, proxy) and the app, and auth-config.json allowing both composes and naming the
// gateway app id, as the supervisor writes it.
async function tier2Stage(t: TestContext) {
  const dir = await makeTempDir(t);
  const tlsDir = join(dir, 'etc', 'tls');
  await ensureHostCa(tlsDir, { hostname: 'sim-gateway-test' });
  const caPem = await readFile(join(tlsDir, 'ca.crt'), 'utf8');
  const host = await startTestHost(t, { dir, tlsDir, kmsUrl: KMS_URL, kmsUrls: [KMS_URL], gatewayIssueDelayMs: 0, gatewayCheckIntervalMs: 200 });
  const client = createVmmClient({ url: host.vmmUrl, mode: 'json' });
  defer(t, () => client.close());
  const [rpc = 0, adminPort = 0, proxy = 0, web = 0] = await freePorts(4);
  const gatewayCompose = appCompose('dstack-gateway', { kms: true, extra: { allowed_envs: ['ADMIN_API_TOKEN', 'MY_URL', 'NODE_ID'], no_instance_id: true } });
  const webCompose = appCompose('web', { kms: true, extra: { gateway_enabled: true } });
  const webAppId = hashCompose(webCompose).slice(0, 40);
  const allow = async (gatewayAppId: string): Promise<void> =>
    writeJson(host.authConfigPath, { ...authConfigFor({ [GATEWAY_APP_ID]: [hashCompose(gatewayCompose)], [webAppId]: [hashCompose(webCompose)] }), gatewayAppId });
  await allow(`0x${GATEWAY_APP_ID}`);
  const seal = (name: string, appId: string, env: EnvEntry[]): Promise<string> =>
    sealEnv({ vmm: client, kmsPublicKeyHex: host.envKeys.kmsPublicKeyHex, now: () => Date.now() }, name, appId, env);
  const tcp = (host_port: number, vm_port: number, host_address = '127.0.0.1') => ({ protocol: 'tcp', host_port, vm_port, host_address });

  // The gateway CVM as upstream's deploy script maps it (docs/dstack.md "Tier 2: the gateway CVM", Ports).
  const deployGateway = async (env: EnvEntry[]): Promise<string> => {
    const ports = [tcp(rpc, 8000), tcp(adminPort, 8001), tcp(proxy, 443), { protocol: 'udp', host_port: rpc, vm_port: 51820, host_address: '127.0.0.1' }];
    const encrypted_env = await seal('dstack-gateway', GATEWAY_APP_ID, env);
    return (await client.createVm({ name: 'dstack-gateway', image: IMAGE, compose_file: gatewayCompose, app_id: GATEWAY_APP_ID, encrypted_env, ports })).id;
  };
  // The app publishes guest port 80 on the host too (direct ports stay under Tier 2); only one
  // VM can hold that host port.
  const deployWeb = async (name: string, gatewayUrls: string[], publish = true): Promise<string> =>
    (await client.createVm({ name, image: IMAGE, compose_file: webCompose, ports: publish ? [tcp(web, 80)] : [], gateway_urls: gatewayUrls })).id;
  const settled = (id: string): Promise<VmInfo> =>
    host.state.waitFor((vms) => vms.some((v) => v.id === id && (v.boot_progress === 'done' || v.status !== 'running'))).then(() => host.state.get(id) as VmInfo);
  const ready = async (gatewayId: string): Promise<AdminTarget> => {
    assert.equal((await settled(gatewayId)).boot_progress, 'done');
    return host.gateways.waitRunning(gatewayId);
  };
  const hasCert = (gw: AdminTarget) =>
    waitUntil(async () => (await admin<ZtDomains>(gw, 'ListZtDomains')).domains.find((d) => d.config.domain === BASE && d.cert_status.has_cert), `a certificate for *.${BASE}`);
  const hosts = async (gw: AdminTarget): Promise<string[]> => (await admin<GatewayStatus>(gw, 'Status')).hosts.map((h) => `${h.app_id} ${h.instance_id}`);
  const registered = (vm: VmInfo | undefined): string => `${webAppId} ${vm?.instance_id ?? '?'}`;
  const viaProxy = () => httpsGet(proxy, `${webAppId}-80.${BASE}`, caPem);
  const rpcUrl = `https://10.0.2.2:${rpc}`;
  return { host, client, caPem, ports: { rpc, admin: adminPort, proxy }, rpcUrl, allow, deployGateway, deployWeb, settled, ready, hasCert, hosts, registered, viaProxy };
}

// How a TCP connection to a loopback port ends: an error code (ECONNRESET, ECONNREFUSED),
// 'closed', or 'open' when the peer keeps it for a second.
function connectOutcome(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    socket.once('close', () => resolve('closed'));
    socket.setTimeout(1000, () => {
      resolve('open');
      socket.destroy();
    });
  });
}

test('Tier 2 end to end: a gateway CVM with its env token and a host-CA certificate routes <app_id>-<port>.<base> to a registered app', async (t) => {
  const s = await tier2Stage(t);
  const gatewayId = await s.deployGateway([{ key: 'ADMIN_API_TOKEN', value: ADMIN_TOKEN }]);
  const gw = await s.ready(gatewayId);
  // Found the way the supervisor finds it: the host port it mapped to guest port 8001.
  assert.equal(gw.adminUrl, `http://127.0.0.1:${s.ports.admin}`);
  assert.equal((await adminCall(gw, '/prpc/Status', {}, { headers: {} })).status, 401);
  const withToken = await fetch(`http://127.0.0.1:${s.ports.admin}/prpc/Status?json`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  assert.equal(withToken.status, 200);
  await configureDomain(gw, BASE, s.ports.proxy);
  await s.hasCert(gw);

  const webId = await s.deployWeb('web', [s.rpcUrl]);
  const web = await s.settled(webId);
  assert.deepEqual([web.status, web.boot_progress, web.boot_error], ['running', 'done', '']);
  assert.deepEqual(await s.hosts(gw), [s.registered(web)]);
  const reply = await s.viaProxy();
  assert.equal(reply.status, 200);
  assert.match(reply.body, new RegExp(`^app web \\(app_id ${web.app_id}\\) on simulated VM ${webId}`));
  assert.equal((await httpsGet(s.ports.proxy, `gateway.${BASE}`, s.caPem, '/health')).status, 200);

  await s.client.stopVm(webId);
  assert.deepEqual(await s.hosts(gw), []);
});

test('a gateway-enabled app with no gateway_urls, no gateway app id or no gateway answering boots to done with the registration boot_error', async (t) => {
  const s = await tier2Stage(t);
  const noUrls = await s.settled(await s.deployWeb('no-urls', [], false));
  assert.deepEqual([noUrls.status, noUrls.boot_progress, noUrls.boot_error], ['running', 'done', `${REGISTRATION_FAILED}: Missing gateway urls`]);

  const down = await s.settled(await s.deployWeb('down', [s.rpcUrl]));
  assert.equal(down.boot_progress, 'done');
  assert.equal(
    down.boot_error,
    `${REGISTRATION_FAILED}: Failed to register CVM, all dstack-gateway urls are down: Failed to register CVM: ` +
      `error sending request for url (${s.rpcUrl}/prpc/RegisterCvm): error trying to connect: tcp connect error: Connection refused (os error 111)`,
  );

  await s.allow('');
  const noAppId = await s.settled(await s.deployWeb('no-app-id', [s.rpcUrl], false));
  assert.deepEqual([noAppId.boot_progress, noAppId.boot_error], ['done', `${REGISTRATION_FAILED}: Missing allowed dstack-gateway app id`]);
});

test('the gateway ports reset connections until boot done; without ADMIN_API_TOKEN the admin API takes no credential (images ≤ 0.5.11)', async (t) => {
  const s = await tier2Stage(t);
  s.host.faults.stallBoot('dstack-gateway');
  const gatewayId = await s.deployGateway([]);
  assert.equal(await waitUntil(async () => ((await connectOutcome(s.ports.admin)) === 'ECONNRESET' ? 'reset' : undefined), 'the admin forward to be bound'), 'reset');
  assert.equal(s.host.gateways.running(gatewayId), undefined);

  s.host.faults.reset();
  await s.client.stopVm(gatewayId);
  assert.equal(await connectOutcome(s.ports.admin), 'ECONNREFUSED');
  await s.client.startVm(gatewayId);
  const gw = await s.ready(gatewayId);
  assert.equal((await adminCall(gw, '/prpc/Status', {}, { headers: { 'content-type': 'application/json' } })).status, 200);
});

test('the gateway CVM keeps certificate and settings across stop/start, an app that booted while it was down registers once it is back, RemoveVm drops its data', async (t) => {
  const s = await tier2Stage(t);
  const gatewayId = await s.deployGateway([{ key: 'ADMIN_API_TOKEN', value: ADMIN_TOKEN }]);
  let gw = await s.ready(gatewayId);
  await configureDomain(gw, BASE, s.ports.proxy);
  await s.hasCert(gw);
  const certPem = s.host.gateways.running(gatewayId)?.store.certs.get(BASE)?.certPem;
  // Any new issuance would fail from here on: a certificate after the restart is the kept one.
  s.host.gateways.faults(gatewayId)?.setIssuanceFault('rate-limited');

  await s.client.stopVm(gatewayId);
  assert.equal(await connectOutcome(s.ports.proxy), 'ECONNREFUSED');
  const webId = await s.deployWeb('web', [s.rpcUrl]);
  const web = await s.settled(webId);
  assert.equal(web.boot_progress, 'done');
  assert.match(web.boot_error, /^dstack-gateway registration failed, the app has no ingress route: .*Connection refused/);

  await s.client.startVm(gatewayId);
  gw = await s.ready(gatewayId);
  const [domain] = (await admin<ZtDomains>(gw, 'ListZtDomains')).domains;
  assert.deepEqual(domain?.cert_status && [domain.cert_status.has_cert, domain.cert_status.loaded_in_memory], [true, true]);
  assert.equal(s.host.gateways.running(gatewayId)?.store.certs.get(BASE)?.certPem, certPem);
  await waitUntil(async () => (await s.hosts(gw)).includes(s.registered(web)), 'the app to re-register with the restarted gateway');
  assert.equal((await s.viaProxy()).status, 200);
  // Upstream's checker leaves the boot error in place until the VM restarts.
  assert.match(s.host.state.get(webId)?.boot_error ?? '', /^dstack-gateway registration failed/);

  await s.client.removeVm(webId);
  await s.client.removeVm(gatewayId);
  await s.host.state.waitFor((vms) => vms.length === 0);
  const again = await s.ready(await s.deployGateway([{ key: 'ADMIN_API_TOKEN', value: ADMIN_TOKEN }]));
  assert.deepEqual(await admin<ZtDomains>(again, 'ListZtDomains'), { domains: [] });
});

test("the guest's checker registers an app whose registration failed at boot, and again once the gateway forgot it", async (t) => {
  const s = await tier2Stage(t);
  const gatewayId = await s.deployGateway([{ key: 'ADMIN_API_TOKEN', value: ADMIN_TOKEN }]);
  const gw = await s.ready(gatewayId);
  s.host.gateways.faults(gatewayId)?.failNext('RegisterCvm', { message: 'simulated failure of RegisterCvm' });
  const web = await s.settled(await s.deployWeb('web', [s.rpcUrl]));
  assert.equal(web.boot_progress, 'done');
  assert.match(web.boot_error, /: Failed to register CVM: simulated failure of RegisterCvm$/);
  await waitUntil(async () => (await s.hosts(gw)).includes(s.registered(web)), 'a retry of the registration');

  // What upstream's recycler does to an instance whose handshakes went stale.
  s.host.gateways.running(gatewayId)?.store.instances.clear();
  assert.deepEqual(await s.hosts(gw), []);
  await waitUntil(async () => (await s.hosts(gw)).includes(s.registered(web)), 'the periodic re-registration');
});
