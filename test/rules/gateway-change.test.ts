// Issue 14, "Disable and change": a changed gateway.toml reconciles the gateway's admin settings in
// place; only image and resource changes upgrade the gateway CVM, as the same VM with the same app
// id and keys. Gateway apps are not restarted by any of it and keep their direct ports throughout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { waitUntil, type Harness } from '../helpers/harness.ts';
import { DOMAIN, byName, direct, gatewayStatus, settledOnGateway, viaGateway, withGatewayApp, writeGatewayToml } from '../helpers/gateway.ts';
import { readGatewayStatus } from '../../src/status/store.ts';
import { tlsPaths } from '../../src/init/tls.ts';
import { bestZtDomain } from '../../src/sim/gateway-store.ts';
import { DEFAULT_SIM_IMAGE } from '../../src/sim/vmm-config.ts';

const MUTATING = ['CreateVm', 'UpdateVm', 'StartVm', 'StopVm', 'ShutdownVm', 'RemoveVm'];
// The admin calls that change the gateway's settings or ask it for a certificate.
const ADMIN_WRITES = ['SetCertbotConfig', 'CreateDnsCredential', 'UpdateDnsCredential', 'AddZtDomain', 'UpdateZtDomain', 'DeleteZtDomain', 'RenewZtDomainCert'];

// The mutating VMM calls on VM `name` since call `from`, in order.
const vmmCalls = (h: Harness, name: string, from: number) =>
  h.sim.faults
    .callLog()
    .slice(from)
    .filter((c) => c.name === name && MUTATING.includes(c.method))
    .map((c) => c.method);

const hostCa = (h: Harness) => readFile(tlsPaths(join(h.dir, 'sim', 'tls')).caCert, 'utf8');

// The gateway serving with shop on it, and what a test compares against afterwards.
async function servingShop(t: Parameters<typeof withGatewayApp>[0], sim: Parameters<typeof withGatewayApp>[1] = {}, apps: Parameters<typeof withGatewayApp>[2] = {}) {
  const { h, port, ports } = await withGatewayApp(t, sim, apps);
  await writeGatewayToml(h, ports);
  await settledOnGateway(h, 'shop');
  const gateway = byName(h, 'dstack-gateway')!;
  const gw = h.sim.gateways.running(gateway.id)!;
  return { h, port, ports, gateway, gw, shop: byName(h, 'shop')!, from: h.sim.faults.callLog().length, adminFrom: gw.faults.calls().length };
}

test('a changed domain: the new ZT domain serves before the old one goes, shop is not restarted, its HTTPS name, status URL and registration follow', { timeout: 60_000 }, async (t) => {
  const { h, port, ports, gateway, gw, shop, from } = await servingShop(t);
  const next = 'apps2.example.test';
  await writeGatewayToml(h, ports, { domain: next });
  // Make before break: while the new certificate is issued the old domain stays, and so do the
  // names apps are given.
  const during = await gatewayStatus(h, 'certificate', new RegExp(`certificate of \\*\\.${next.replaceAll('.', '\\.')}`));
  assert.equal(during.domain, DOMAIN, 'apps keep their names until the new domain serves');
  assert.deepEqual([...gw.store.domains.keys()].sort(), [DOMAIN, next]);
  const name = `${shop.app_id}-${port}.${next}`;
  const { status, urls } = await waitUntil(async () => {
    const s = await readGatewayStatus(h.config.state_dir);
    const app = (await h.statuses()).find((a) => a.app === 'shop');
    return s?.phase === 'serving' && s.domain === next && app?.urls.includes(`https://${name}:${ports.proxy}`) ? { status: s, urls: app.urls } : undefined;
  }, 'serving the new domain, with shop\'s status naming it', 30_000);
  assert.match(status.reason, new RegExp(`^serving \\*\\.${next.replaceAll('.', '\\.')} on port ${ports.proxy}$`));
  assert.deepEqual([...gw.store.domains.keys()], [next], 'only the new ZT domain is left');
  assert.ok(!urls.some((u) => u.includes(`.${DOMAIN}`)), JSON.stringify(urls));
  assert.deepEqual(bestZtDomain(gw.store, 1), { domain: next, port: ports.proxy }, 'registrations (and admin Status) name the new domain');
  assert.match(await viaGateway(ports.proxy, name, await hostCa(h)), /app shop/);
  assert.match(await direct(port), /app shop/);
  assert.deepEqual(vmmCalls(h, 'shop', from), [], 'shop is not restarted: nothing its VM is given names the domain');
  assert.deepEqual(vmmCalls(h, 'dstack-gateway', from), [], 'the gateway CVM is not touched');
  assert.equal(byName(h, 'dstack-gateway')!.id, gateway.id);
});

// Upstream's release 0.5.10 image beside the default one, so the gateway can be moved to it.
const OTHER_IMAGE = { name: 'dstack-0.5.10', version: '0.5.10', digest: 'b0'.repeat(32) };

test('changed [cvm] image, vcpu, memory and disk: the same gateway CVM is stopped, updated and started (same id, app id, secrets, disk); shop keeps answering on its direct port', { timeout: 60_000 }, async (t) => {
  const { h, port, ports, gateway, gw, from } = await servingShop(t, { images: [DEFAULT_SIM_IMAGE, OTHER_IMAGE] });
  const auth = JSON.parse(await readFile(h.config.auth.config_path, 'utf8'));
  await writeFile(h.config.auth.config_path, JSON.stringify({ ...auth, osImages: [...auth.osImages, OTHER_IMAGE.digest] }, null, 2));
  const secretsFile = join(h.config.state_dir, 'gateway', 'secrets.json');
  const secrets = await readFile(secretsFile, 'utf8');
  const { acmeAccount } = gw.store;
  const cert = gw.store.certs.get(DOMAIN);
  assert.ok(acmeAccount && cert);
  await writeGatewayToml(h, ports, { extra: ['[cvm]', `image = "${OTHER_IMAGE.name}"`, 'vcpu = 2', 'memory = 3072', 'disk = 30'] });
  const misses: string[] = [];
  await waitUntil(async () => {
    // Asked at every look, the whole way through.
    await direct(port).catch((err: Error) => misses.push(err.message));
    const vm = byName(h, 'dstack-gateway');
    const s = await readGatewayStatus(h.config.state_dir);
    return vm?.configuration?.image === OTHER_IMAGE.name && vm.status === 'running' && vm.boot_progress === 'done' && s?.phase === 'serving' && s.switching === null;
  }, 'the upgraded gateway serving again', 30_000);
  assert.deepEqual(misses, [], 'shop answered on its direct port throughout');
  assert.deepEqual(vmmCalls(h, 'dstack-gateway', from), ['StopVm', 'UpdateVm', 'StartVm'], 'upgraded in place: never removed, never created');
  const vm = byName(h, 'dstack-gateway')!;
  assert.equal(vm.id, gateway.id);
  assert.equal(vm.app_id, gateway.app_id);
  assert.deepEqual([vm.configuration?.vcpu, vm.configuration?.memory, vm.configuration?.disk_size], [2, 3072, 30]);
  assert.equal(await readFile(secretsFile, 'utf8'), secrets, 'the secrets file is unchanged');
  const after = h.sim.gateways.running(vm.id)!;
  assert.equal(after.store.acmeAccount, acmeAccount, 'the same ACME account');
  assert.equal(after.store.certs.get(DOMAIN), cert, 'the same certificate, not issued again');
  assert.deepEqual(vmmCalls(h, 'shop', from), [], 'shop is not restarted');
  const ca = await hostCa(h);
  const name = `${byName(h, 'shop')!.app_id}-${port}.${DOMAIN}`;
  // Its guest registers again once the gateway is back (upstream: when the handshake goes stale).
  await waitUntil(() => viaGateway(ports.proxy, name, ca).then((body) => /app shop/.test(body), () => false), 'shop answering through the gateway again', 30_000);
});

test('changed email, staging and DNS token: handed over in place with no restart of the gateway CVM; the staging switch renews the certificate from the new directory', { timeout: 60_000 }, async (t) => {
  const { h, ports, gateway, gw, from, adminFrom } = await servingShop(t, {}, { resync_s: 0.5 });
  const adminSince = () => gw.faults.calls().slice(adminFrom);
  const writes = () => adminSince().filter((m) => ADMIN_WRITES.includes(m));
  const passes = () => adminSince().filter((m) => m === 'GetCertbotConfig').length;

  // The email goes nowhere: the gateway registers its ACME account with no contact.
  await writeGatewayToml(h, ports, { email: 'security@example.test' });
  await waitUntil(() => passes() >= 2, 'two passes over the new file', 15_000);
  assert.deepEqual(writes(), [], 'a changed email changes nothing in the gateway');

  const production = gw.store.acmeAccount!;
  const cert = gw.store.certs.get(DOMAIN)!;
  const rotated = 'cf-token-rotated-fedcba9876543210';
  await writeFile(join(h.config.gateway_dir, 'cloudflare.token'), `${rotated}\n`, { mode: 0o600 });
  await writeGatewayToml(h, ports, { email: 'security@example.test', certificate: ['staging = true'], withToken: false });
  const staging = 'https://acme-staging-v02.api.letsencrypt.org/directory';
  await waitUntil(async () => {
    const s = await readGatewayStatus(h.config.state_dir);
    return gw.store.certs.get(DOMAIN) !== cert && s?.phase === 'serving' && !/still from/.test(s.reason);
  }, 'a certificate from the staging directory, served', 30_000);
  assert.equal(gw.store.certbot.acme_url, staging);
  assert.deepEqual([...gw.store.credentials.values()].map((c) => c.apiToken), [rotated], 'the one DNS credential has the new token');
  assert.equal(gw.store.acmeAccount?.directory, staging, 'an account at the staging directory, registered by the gateway for the renewal');
  assert.notEqual(gw.store.acmeAccount?.uri, production.uri);
  assert.deepEqual(writes().sort(), ['RenewZtDomainCert', 'SetCertbotConfig', 'UpdateDnsCredential'], 'each handed over once, and one forced renewal');
  assert.deepEqual(vmmCalls(h, 'dstack-gateway', from), [], 'no UpdateVm, StopVm or StartVm of the gateway CVM');
  assert.deepEqual(vmmCalls(h, 'shop', from), [], 'shop is not restarted');
  assert.equal(byName(h, 'dstack-gateway')!.id, gateway.id);
  const origin = JSON.parse(await readFile(join(h.config.state_dir, 'gateway', 'certificate.json'), 'utf8'));
  assert.deepEqual(origin, { domain: DOMAIN, issued_at: gw.store.certs.get(DOMAIN)!.issuedAt, acme_url: staging }, 'a restart knows the certificate is from staging now');
});

// The renewal a staging switch forces is resumable: a supervisor restarted before it succeeded
// still forces it (certificate.json says the served certificate is from the old directory), and
// one restarted after it does not force another.
test('after a staging switch, a restart before the forced renewal succeeded still renews once, and a restart after it renews nothing', { timeout: 90_000 }, async (t) => {
  // Passes while serving come once per resync: a short one, for the ones counted after restarts.
  const { h, ports, gw, adminFrom } = await servingShop(t, {}, { resync_s: 0.5 });
  const renewals = () => gw.faults.calls().slice(adminFrom).filter((m) => m === 'RenewZtDomainCert').length;
  const cert = gw.store.certs.get(DOMAIN);
  gw.faults.failNext('RenewZtDomainCert', { message: 'certificate renewal failed: simulated' });
  await writeGatewayToml(h, ports, { certificate: ['staging = true'] });
  const refused = await gatewayStatus(h, 'serving', /; the certificate served is still from Let's Encrypt production, not https:\/\/acme-staging-v02\.api\.letsencrypt\.org\/directory; renewing it from there failed: certificate renewal failed: simulated$/);
  assert.equal(refused.serving, true, 'the certificate it has is served meanwhile');
  await h.stop();
  await h.start();
  await waitUntil(() => gw.store.certs.get(DOMAIN) !== cert, 'the certificate renewed after the restart', 30_000);
  await gatewayStatus(h, 'serving', /^serving \S+ on port \d+$/);
  assert.equal(renewals(), 2, 'the refused ask, then one after the restart');
  await h.stop();
  await h.start();
  const passes = gw.faults.calls().filter((m) => m === 'GetCertbotConfig').length;
  await waitUntil(() => gw.faults.calls().filter((m) => m === 'GetCertbotConfig').length >= passes + 6, 'six passes after the second restart', 30_000);
  assert.equal(renewals(), 2, 'nothing forced again');
});
