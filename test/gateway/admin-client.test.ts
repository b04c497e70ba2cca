// The supervisor's client of the gateway's admin API, on the wire against the simulated gateway:
// typed replies, the gateway's own refusal message, unreachable and unauthorised gateways.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createGatewayAdmin, GatewayAdminError } from '../../src/gateway/admin-client.ts';
import { defer } from '../helpers/cleanup.ts';
import { ADMIN_TOKEN, startTestGateway } from '../sim/gateway-fixtures.ts';
import { freePort } from '../sim/fixtures.ts';

test('admin calls return typed replies, and a refusal carries the gateway\'s own message', { timeout: 20_000 }, async (t) => {
  const { gw } = await startTestGateway(t);
  const client = createGatewayAdmin({ adminUrl: gw.adminUrl, rpcUrl: gw.rpcUrl, token: ADMIN_TOKEN });
  defer(t, () => client.close());

  await client.health();
  assert.deepEqual((await client.call('ListZtDomains', {})).domains, []);
  const added = await client.call('AddZtDomain', { domain: 'apps.example.com', port: 443, priority: 100 });
  assert.equal(added.config.domain, 'apps.example.com');
  const again = await client.call('AddZtDomain', { domain: 'apps.example.com', port: 443 }).catch((e: unknown) => e);
  assert.ok(again instanceof GatewayAdminError && again.code === 'GATEWAY_REFUSED', String(again));
  assert.match(again.gatewayMessage, /already exists/);
  const created = await client.call('CreateDnsCredential', { name: 'cloudflare', provider_type: 'cloudflare', cf_api_token: 'secret-token-value-1234', set_as_default: true });
  assert.doesNotMatch(JSON.stringify(created), /secret-token-value-1234/, 'the gateway redacts the token');
});

test('a wrong token is refused, and nothing listening is GATEWAY_UNREACHABLE', { timeout: 20_000 }, async (t) => {
  const { gw } = await startTestGateway(t);
  const wrong = createGatewayAdmin({ adminUrl: gw.adminUrl, rpcUrl: gw.rpcUrl, token: 'not-the-token' });
  defer(t, () => wrong.close());
  await assert.rejects(wrong.call('Status', {}), (e: GatewayAdminError) => e.code === 'GATEWAY_REFUSED' && /HTTP 401/.test(e.message));

  const port = await freePort();
  const none = createGatewayAdmin({ adminUrl: `http://127.0.0.1:${port}`, rpcUrl: `https://127.0.0.1:${port}`, token: ADMIN_TOKEN, timeoutMs: 2_000 });
  defer(t, () => none.close());
  await assert.rejects(none.call('Status', {}), (e: GatewayAdminError) => e.code === 'GATEWAY_UNREACHABLE' && e.message.includes(`127.0.0.1:${port}`));
  await assert.rejects(none.health(), (e: GatewayAdminError) => e.code === 'GATEWAY_UNREACHABLE');
});
