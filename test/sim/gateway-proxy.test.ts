import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import { issueServerCert } from '../../src/init/tls.ts';
import { listenServer } from '../../src/sim/http-server.ts';
import type { HostPort } from '../../src/sim/vm-rules.ts';
import { defer } from '../helpers/cleanup.ts';
import { createManualClock } from '../helpers/manual-clock.ts';
import { admin, adminCall, configureDomain, httpsGet, makeCa, startApp, startTestGateway } from './gateway-fixtures.ts';

type Status = { num_connections: number; hosts: { instance_id: string; num_connections: number }[] };
type DomainList = { domains: { config: { domain: string }; cert_status: { has_cert: boolean; loaded_in_memory: boolean; not_after: number; issued_by: number } }[] };

const APP = '0123456789abcdef0123456789abcdef01234567';
// Instance ids are hex like app ids: a `-` in the first label is refused by the SNI grammar.
const INSTANCE = 'fedcba9876543210fedcba9876543210fedcba98';
const BASE = 'apps.example.test';
const forward = (vm_port: number, host_port: number): HostPort => ({ protocol: 'tcp', host_address: '0.0.0.0', host_port, vm_port });

test('HTTPS through the SNI proxy reaches the app listener registered for that port, with the wildcard from the given CA', async (t) => {
  const { gw, caPem } = await startTestGateway(t);
  const [web, api] = [await startApp(t, 'web'), await startApp(t, 'api')];
  await configureDomain(gw, BASE);
  await gw.register({ appId: APP, instanceId: INSTANCE, ports: [forward(80, web), forward(8080, api)] });

  const viaPort = await httpsGet(gw.proxyPort, `${APP}-8080.${BASE}`, caPem, '/v1/items');
  assert.deepEqual(viaPort, { status: 200, body: `api /v1/items host=${APP}-8080.${BASE}` });
  // No port: 80, as upstream.
  assert.equal((await httpsGet(gw.proxyPort, `${APP}.${BASE}`, caPem)).body, `web / host=${APP}.${BASE}`);
  // An instance id routes to that instance.
  assert.match((await httpsGet(gw.proxyPort, `${INSTANCE}-8080.${BASE}`, caPem)).body, /^api \//);

  const listed = await admin<DomainList>(gw, 'ListZtDomains');
  assert.equal(listed.domains[0]?.cert_status.has_cert, true);
  assert.equal(listed.domains[0]?.cert_status.loaded_in_memory, true);
  assert.equal(listed.domains[0]?.cert_status.issued_by, 1);
  assert.ok((listed.domains[0]?.cert_status.not_after ?? 0) * 1000 > Date.now());

  // Upstream keeps a deleted domain's certificate, and the proxy keeps serving its names.
  await admin(gw, 'DeleteZtDomain', { domain: BASE });
  assert.equal((await httpsGet(gw.proxyPort, `${APP}.${BASE}`, caPem)).status, 200);
});

test('an open relayed connection counts in Status for its instance and in total', async (t) => {
  const { gw, caPem } = await startTestGateway(t);
  await configureDomain(gw, BASE);
  await gw.register({ appId: APP, instanceId: INSTANCE, ports: [forward(80, await startApp(t, 'web'))] });
  const client = tlsConnect({ host: '127.0.0.1', port: gw.proxyPort, servername: `${APP}.${BASE}`, ca: caPem });
  defer(t, () => client.destroy());
  client.write(`GET / HTTP/1.1\r\nHost: ${APP}.${BASE}\r\n\r\n`);
  const reply = await new Promise<string>((resolve, reject) => client.once('data', (d: Buffer) => resolve(d.toString())).once('error', reject));
  assert.match(reply, /^HTTP\/1\.1 200/);
  const status = await admin<Status>(gw, 'Status');
  assert.equal(status.num_connections, 1);
  assert.deepEqual(status.hosts.map((h) => [h.instance_id, h.num_connections]), [[INSTANCE, 1]]);
});

test('a `-<port>s` name passes TLS through untouched to an app that terminates it itself', async (t) => {
  const { gw } = await startTestGateway(t);
  await configureDomain(gw, BASE);
  // The app's certificate comes from a CA of its own, the only one the client trusts.
  const appCa = await makeCa(t);
  const own = issueServerCert({ dns: [`*.${BASE}`], ips: [] }, appCa, Date.now());
  const appServer = createTlsServer({ key: own.keyPem, cert: own.certPem }, (socket) => socket.end('HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n\r\ntls-app'));
  const bound = await listenServer(appServer, { host: '127.0.0.1', port: 0 });
  defer(t, () => bound.close());
  await gw.register({ appId: APP, instanceId: INSTANCE, ports: [forward(443, bound.port)] });
  assert.deepEqual(await httpsGet(gw.proxyPort, `${APP}-443s.${BASE}`, appCa.certPem), { status: 200, body: 'tls-app' });
});

test('unknown ids, names without a wildcard and connections without SNI are closed before the handshake', async (t) => {
  const { gw, caPem } = await startTestGateway(t);
  await configureDomain(gw, BASE);
  await assert.rejects(httpsGet(gw.proxyPort, `${'f'.repeat(40)}-80.${BASE}`, caPem), { code: 'ECONNRESET' });
  await assert.rejects(httpsGet(gw.proxyPort, `${APP}-80.elsewhere.test`, caPem), { code: 'ECONNRESET' });
  await assert.rejects(httpsGet(gw.proxyPort, `${APP}-80-1.${BASE}`, caPem), { code: 'ECONNRESET' });
  // An IP literal sends no SNI.
  await assert.rejects(
    new Promise((resolve, reject) => tlsConnect({ host: '127.0.0.1', port: gw.proxyPort, ca: caPem }, () => resolve(undefined)).on('error', reject)),
    { code: 'ECONNRESET' },
  );
  const logs = gw.logs().join('\n');
  assert.match(logs, new RegExp(`app <${'f'.repeat(40)}> not found`));
  assert.match(logs, /elsewhere\.test: no wildcard certificate/);
  assert.match(logs, /invalid sni format/);
  assert.match(logs, /connection: no sni found/);
});

test('a registered app without a listener on the port drops the connection after the handshake; gateway.<base>/health answers', async (t) => {
  const { gw, caPem } = await startTestGateway(t);
  await configureDomain(gw, BASE);
  await gw.register({ appId: APP, instanceId: INSTANCE, ports: [] });
  await assert.rejects(httpsGet(gw.proxyPort, `${APP}-8080.${BASE}`, caPem), { code: 'ECONNRESET' });
  assert.match(gw.logs().join('\n'), /failed to connect to app 0123456789abcdef0123456789abcdef01234567 port 8080/);
  assert.deepEqual(await httpsGet(gw.proxyPort, `gateway.${BASE}`, caPem, '/health'), { status: 200, body: '' });
  assert.equal((await httpsGet(gw.proxyPort, `gateway.${BASE}`, caPem, '/.dstack/index')).status, 200);
});

test('issuance waits for a DNS credential: adding the domain first leaves it without a cert until a renewal', async (t) => {
  const { gw } = await startTestGateway(t);
  await admin(gw, 'AddZtDomain', { domain: BASE, port: 443 });
  assert.equal((await admin<DomainList>(gw, 'ListZtDomains')).domains[0]?.cert_status.has_cert, false);
  assert.match(gw.logs().join('\n'), /cert\[apps\.example\.test\]: auto-renewal failed: no default DNS credential configured/);

  const early = await adminCall(gw, '/prpc/RenewZtDomainCert', { domain: BASE });
  assert.deepEqual(early.body, { error: 'certificate renewal failed: no default DNS credential configured' });
  await admin(gw, 'CreateDnsCredential', { name: 'cloudflare', provider_type: 'cloudflare', cf_api_token: 'cf-token-0123456789', set_as_default: true });
  const renewed = await admin<{ renewed: boolean; not_after: number }>(gw, 'RenewZtDomainCert', { domain: BASE });
  assert.equal(renewed.renewed, true);
  // Inside its validity and outside the renewal window: nothing to do unless forced.
  assert.deepEqual(await admin(gw, 'RenewZtDomainCert', { domain: BASE }), { renewed: false, not_after: 0 });
  assert.equal((await admin<{ renewed: boolean }>(gw, 'RenewZtDomainCert', { domain: BASE, force: true })).renewed, true);
});

test('issuance faults: a rate limit or a token without DNS edit rights keep has_cert false and say why', async (t) => {
  const { gw } = await startTestGateway(t);
  gw.faults.setIssuanceFault('dns-forbidden');
  await configureDomain(gw, BASE);
  assert.equal((await admin<DomainList>(gw, 'ListZtDomains')).domains[0]?.cert_status.has_cert, false);
  assert.match(gw.logs().join('\n'), /auto-renewal failed: failed to request new certificate: failed to create dns record: .*Authentication error/);

  gw.faults.setIssuanceFault('rate-limited');
  const limited = await adminCall(gw, '/prpc/RenewZtDomainCert', { domain: BASE, force: true });
  assert.equal(limited.status, 400);
  assert.match((limited.body as { error: string }).error, /^certificate renewal failed: failed to request new certificate: .*urn:ietf:params:acme:error:rateLimited/);

  gw.faults.setIssuanceFault('none');
  assert.equal((await admin<{ renewed: boolean }>(gw, 'RenewZtDomainCert', { domain: BASE })).renewed, true);
});

test('issuance is asynchronous and retried by the renewal loop; the certificate survives a restart on the same store', async (t) => {
  const clock = createManualClock();
  const { gw, caPem } = await startTestGateway(t, { clock, issueDelayMs: 500 });
  const app = await startApp(t, 'web');
  await admin(gw, 'SetCertbotConfig', { renew_interval_secs: 3600 });
  gw.faults.setIssuanceFault('rate-limited');
  await configureDomain(gw, BASE);
  const hasCert = async (g = gw): Promise<boolean | undefined> => (await admin<DomainList>(g, 'ListZtDomains')).domains[0]?.cert_status.has_cert;
  await clock.advance(500);
  assert.equal(await hasCert(), false);

  gw.faults.setIssuanceFault('none');
  // The loop was armed at start with the default 12 h; the next one uses the new interval.
  await clock.advance(12 * 3600_000);
  await clock.advance(500);
  assert.equal(await hasCert(), true);

  await gw.close();
  const { gw: restarted } = await startTestGateway(t, { store: gw.store, clock });
  await restarted.register({ appId: APP, instanceId: INSTANCE, ports: [forward(80, app)] });
  assert.equal(await hasCert(restarted), true);
  assert.equal((await httpsGet(restarted.proxyPort, `${APP}.${BASE}`, caPem)).status, 200);
});

// As the pinned gateway-v0.5.8 keeps it (distributed_certbot.rs get_or_create_acme_client).
test('the ACME account: none until an attempt gets past the zone lookup, then one, kept through failed orders; a new acme_url registers a new one', async (t) => {
  const { gw } = await startTestGateway(t);
  // Read afresh each time (an assertion narrows a property read once).
  const account = () => gw.store.acmeAccount;
  const registered = () => gw.logs().filter((l) => l.startsWith('creating new global ACME account at ')).length;
  gw.faults.setIssuanceFault('no-zone');
  await configureDomain(gw, BASE);
  assert.equal((await adminCall(gw, '/prpc/RenewZtDomainCert', { domain: BASE })).status, 400);
  assert.equal(account(), undefined, 'no zone: the DNS client fails before any account');

  gw.faults.setIssuanceFault('rate-limited');
  assert.equal((await adminCall(gw, '/prpc/RenewZtDomainCert', { domain: BASE })).status, 400);
  const first = account();
  assert.equal(first?.directory, 'https://acme-v02.api.letsencrypt.org/directory');
  assert.match(first?.uri ?? '', /^https:\/\/acme-v02\.api\.letsencrypt\.org\/acme\/acct\/\d+$/);
  assert.equal((await adminCall(gw, '/prpc/RenewZtDomainCert', { domain: BASE })).status, 400);
  gw.faults.setIssuanceFault('none');
  assert.equal((await admin<{ renewed: boolean }>(gw, 'RenewZtDomainCert', { domain: BASE })).renewed, true);
  assert.equal(account(), first, 'the same account through refused orders and an issuance');
  assert.equal(registered(), 1);

  const staging = 'https://acme-staging-v02.api.letsencrypt.org/directory';
  await admin(gw, 'SetCertbotConfig', { acme_url: staging });
  assert.equal(account(), first, 'SetCertbotConfig alone registers nothing');
  assert.equal((await admin<{ renewed: boolean }>(gw, 'RenewZtDomainCert', { domain: BASE, force: true })).renewed, true);
  assert.equal(account()?.directory, staging);
  assert.equal(registered(), 2);
  assert.match(gw.logs().join('\n'), /ACME URL mismatch in KvStore credentials, will create new account/);
});
