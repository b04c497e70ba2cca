import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_TOKEN, admin, adminCall, startTestGateway } from './gateway-fixtures.ts';

type Credential = { id: string; name: string; cf_api_token: string; cf_api_url: string; dns_txt_ttl: number; max_dns_wait: number };
type DomainInfo = { config: { domain: string; port: number; priority: number; dns_cred_id: string | null; node: number | null }; cert_status: { has_cert: boolean; loaded_in_memory: boolean } };

test('the admin API refuses a call without the token, with the gateway realm, and takes every upstream credential form', async (t) => {
  const { gw } = await startTestGateway(t);
  const attempts: Record<string, string>[] = [{}, { authorization: 'Bearer wrong' }, { 'x-admin-token': 'wrong' }];
  for (const headers of attempts) {
    const reply = await adminCall(gw, '/prpc/Status', {}, { headers });
    assert.equal(reply.status, 401, JSON.stringify(headers));
    assert.equal(reply.headers.get('www-authenticate'), 'Basic realm="dstack-gateway admin"');
    assert.equal(reply.body, undefined);
  }
  // A wrong Bearer is final: no fallback to ?token=.
  assert.equal((await adminCall(gw, `/prpc/Status?token=${ADMIN_TOKEN}`, undefined, { method: 'GET', headers: { authorization: 'Bearer wrong' } })).status, 401);
  assert.equal((await adminCall(gw, '/prpc/Status', {}, { headers: { 'x-admin-token': ADMIN_TOKEN, 'content-type': 'application/json' } })).status, 200);
  assert.equal((await adminCall(gw, `/prpc/Status?token=${ADMIN_TOKEN}`, undefined, { method: 'GET', headers: {} })).status, 200);
});

test('methods answer at /prpc/<M>, /prpc/Admin.<M> and /<M>; unknown ones and protobuf mode get a 400', async (t) => {
  const { gw } = await startTestGateway(t);
  for (const path of ['/prpc/GetCertbotConfig', '/prpc/Admin.GetCertbotConfig', '/GetCertbotConfig']) {
    const reply = await adminCall(gw, path, {});
    assert.equal(reply.status, 200, path);
    assert.deepEqual(reply.body, { renew_interval_secs: 43_200, renew_before_expiration_secs: 2_592_000, renew_timeout_secs: 300, acme_url: '' });
  }
  const unknown = await adminCall(gw, '/prpc/RotateAcmeCredentials', {});
  assert.equal(unknown.status, 400);
  assert.deepEqual(unknown.body, { error: 'Method not found: RotateAcmeCredentials' });
  const res = await fetch(`${gw.adminUrl}/prpc/Status`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, body: '' });
  assert.equal(res.status, 400);
  assert.equal(res.headers.get('content-type'), 'application/octet-stream');
  await res.arrayBuffer();
});

test('SetCertbotConfig changes only the fields given and answers null', async (t) => {
  const { gw } = await startTestGateway(t);
  const reply = await adminCall(gw, '/prpc/SetCertbotConfig', { acme_url: 'https://acme-staging-v02.api.letsencrypt.org/directory', renew_interval_secs: 3600 });
  assert.equal(reply.status, 200);
  assert.equal(reply.body, null);
  assert.deepEqual(await admin(gw, 'GetCertbotConfig'), {
    renew_interval_secs: 3600,
    renew_before_expiration_secs: 2_592_000,
    renew_timeout_secs: 300,
    acme_url: 'https://acme-staging-v02.api.letsencrypt.org/directory',
  });
});

test('DNS credentials: create always adds a record, update changes it in place, and every reply redacts the token', async (t) => {
  const { gw } = await startTestGateway(t);
  const token = 'cf-secret-token-abcdefghijkl';
  const created = await admin<Credential>(gw, 'CreateDnsCredential', { name: 'cloudflare', provider_type: 'cloudflare', cf_api_token: token, set_as_default: true });
  assert.equal(created.cf_api_token, 'cf-s...ijkl');
  assert.equal(created.dns_txt_ttl, 60);
  assert.equal(created.max_dns_wait, 300);
  assert.match(created.id, /^[0-9a-f]+$/);

  // No uniqueness upstream: a second create with the same name is a second credential, which is
  // why a client lists first.
  const again = await admin<Credential>(gw, 'CreateDnsCredential', { name: 'cloudflare', provider_type: 'cloudflare', cf_api_token: 'short' });
  assert.notEqual(again.id, created.id);
  assert.equal(again.cf_api_token, '*****');
  const listed = await admin<{ credentials: Credential[]; default_id: string }>(gw, 'ListDnsCredentials');
  assert.equal(listed.credentials.length, 2);
  assert.equal(listed.default_id, created.id);
  assert.ok(!JSON.stringify(listed).includes(token), 'the token never leaves the gateway');

  const updated = await admin<Credential>(gw, 'UpdateDnsCredential', { id: created.id, cf_api_token: 'cf-rotated-token-zyxwvuts', cf_api_url: 'http://127.0.0.1:1/client/v4' });
  assert.equal(updated.id, created.id);
  assert.equal(updated.name, 'cloudflare');
  assert.equal(updated.cf_api_token, 'cf-r...vuts');
  assert.equal(updated.cf_api_url, 'http://127.0.0.1:1/client/v4');
  assert.equal(gw.store.credentials.get(created.id)?.apiToken, 'cf-rotated-token-zyxwvuts');
  assert.equal((await admin<{ credentials: Credential[] }>(gw, 'ListDnsCredentials')).credentials.length, 2);

  const missing = await adminCall(gw, '/prpc/UpdateDnsCredential', { id: 'nope', name: 'x' });
  assert.deepEqual([missing.status, missing.body], [400, { error: 'dns credential not found' }]);
  const route53 = await adminCall(gw, '/prpc/CreateDnsCredential', { name: 'r53', provider_type: 'route53' });
  assert.deepEqual([route53.status, route53.body], [400, { error: 'unsupported provider type: route53' }]);
});

test('ZT-domains: add normalizes and refuses a duplicate, update needs an existing one, delete removes it', async (t) => {
  const { gw } = await startTestGateway(t);
  const added = await admin<DomainInfo>(gw, 'AddZtDomain', { domain: '*.Apps.Example.COM.', port: 443, priority: 100 });
  assert.deepEqual(added.config, { domain: 'apps.example.com', port: 443, priority: 100, dns_cred_id: null, node: null });
  assert.deepEqual(added.cert_status, { has_cert: false, not_after: 0, issued_by: 0, issued_at: 0, loaded_in_memory: false });

  const duplicate = await adminCall(gw, '/prpc/AddZtDomain', { domain: 'apps.example.com', port: 8443 });
  assert.deepEqual([duplicate.status, duplicate.body], [400, { error: 'ZT-Domain config already exists: apps.example.com' }]);
  const noPort = await adminCall(gw, '/prpc/AddZtDomain', { domain: 'other.example.com' });
  assert.deepEqual(noPort.body, { error: 'port must be between 1 and 65535' });
  const badLabel = await adminCall(gw, '/prpc/AddZtDomain', { domain: 'bad-.example.com', port: 443 });
  assert.deepEqual(badLabel.body, { error: 'domain contains an invalid DNS label' });
  const badCred = await adminCall(gw, '/prpc/AddZtDomain', { domain: 'other.example.com', port: 443, dns_cred_id: 'nope' });
  assert.deepEqual(badCred.body, { error: 'specified dns credential not found' });

  const updated = await admin<DomainInfo>(gw, 'UpdateZtDomain', { domain: 'apps.example.com', port: 9204, priority: 5 });
  assert.deepEqual([updated.config.port, updated.config.priority], [9204, 5]);
  const missing = await adminCall(gw, '/prpc/UpdateZtDomain', { domain: 'absent.example.com', port: 443 });
  assert.deepEqual(missing.body, { error: 'ZT-Domain config not found' });

  const listed = await admin<{ domains: DomainInfo[] }>(gw, 'ListZtDomains');
  assert.deepEqual(listed.domains.map((d) => d.config.domain), ['apps.example.com']);
  assert.equal((await adminCall(gw, '/prpc/DeleteZtDomain', { domain: 'APPS.example.com' })).body, null);
  assert.deepEqual(await admin(gw, 'ListZtDomains'), { domains: [] });
  assert.deepEqual((await adminCall(gw, '/prpc/DeleteZtDomain', { domain: 'apps.example.com' })).body, { error: 'ZT-Domain config not found' });
});

test('an injected failure after apply leaves the object created, so a retry must list first', async (t) => {
  const { gw } = await startTestGateway(t);
  gw.faults.failNext('CreateDnsCredential', { afterApply: true, message: 'connection reset' });
  const failed = await adminCall(gw, '/prpc/CreateDnsCredential', { name: 'cloudflare', provider_type: 'cloudflare', cf_api_token: 'cf-token-0123456789' });
  assert.deepEqual([failed.status, failed.body], [400, { error: 'connection reset' }]);
  assert.equal((await admin<{ credentials: unknown[] }>(gw, 'ListDnsCredentials')).credentials.length, 1);

  gw.faults.failNext('AddZtDomain');
  const refused = await adminCall(gw, '/prpc/AddZtDomain', { domain: 'apps.example.com', port: 443 });
  assert.deepEqual(refused.body, { error: 'simulated failure of AddZtDomain' });
  assert.deepEqual(await admin(gw, 'ListZtDomains'), { domains: [] });
  assert.deepEqual(gw.faults.calls(), ['CreateDnsCredential', 'ListDnsCredentials', 'AddZtDomain', 'ListZtDomains']);
});

test('the gateway refuses to start without an admin token, as upstream fails closed', async (t) => {
  await assert.rejects(startTestGateway(t, { adminToken: ' ' }), { code: 'SIM_GATEWAY_CONFIG' });
});
