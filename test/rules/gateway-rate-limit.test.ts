// Issue 14, failure modes: "ACME rate limit (back off, never recreate the CVM or the account)".
// Watched over 30 passes of Tier 2, not at one instant. At the pinned gateway-v0.5.8 the one ACME
// account is registered anew only when the gateway's store has none (a new CVM, whose disk is
// empty) or when its acme_url names another directory (SetCertbotConfig with another URL)
// (distributed_certbot.rs get_or_create_acme_client); so neither may happen, and the gateway is
// asked for the certificate less and less often.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitUntil } from '../helpers/harness.ts';
import { byName, direct, gatewayEnabled, gatewayStatus, withGatewayApp, writeGatewayToml } from '../helpers/gateway.ts';

const count = (calls: readonly string[], method: string) => calls.filter((m) => m === method).length;

test('under Let\'s Encrypt\'s rate limit for 30 passes: the gateway CVM and its ACME account are kept, and the certificate is asked for less and less often', { timeout: 90_000 }, async (t) => {
  const { h, port, ports } = await withGatewayApp(t);
  await writeGatewayToml(h, ports);
  const vms = await h.until((list) => list.some((v) => v.name === 'dstack-gateway'), 'the gateway CVM created');
  const id = vms.find((v) => v.name === 'dstack-gateway')!.id;
  const faults = await waitUntil(() => h.sim.gateways.faults(id), 'the gateway launched');
  faults.setIssuanceFault('rate-limited');
  await gatewayStatus(h, 'certificate', /rateLimited.*Let's Encrypt's rate limit: issuance is retried later and the gateway CVM is kept/);
  const gw = h.sim.gateways.running(id)!;
  const account = gw.store.acmeAccount;
  assert.ok(account, 'the first attempt registered the account before its order was refused');
  // One pass of the enable step reads the certbot settings once.
  const passes = () => count(faults.calls(), 'GetCertbotConfig');
  const start = faults.calls().length;
  const before = passes();
  await waitUntil(() => passes() >= before + 30, '30 more passes', 60_000);

  const all = faults.calls();
  const since = all.slice(start);
  assert.equal(count(all, 'SetCertbotConfig'), 0, 'acme_url never changed: no new account asked for');
  assert.deepEqual([count(all, 'CreateDnsCredential'), count(all, 'UpdateDnsCredential'), count(all, 'AddZtDomain'), count(all, 'DeleteZtDomain')], [1, 0, 1, 0], 'settings made once');
  // The asks come 10 and then 20 passes after the one that reported the rate limit.
  const asks = count(since, 'RenewZtDomainCert');
  assert.ok(asks >= 1 && asks <= 2, `${asks} asks in 30 passes`);
  assert.equal(gw.store.acmeAccount, account, 'the same ACME account');
  assert.equal(gw.logs().filter((l) => l.startsWith('creating new global ACME account')).length, 1, 'one account registered, ever');
  const gatewayCalls = h.sim.faults.callLog().filter((c) => c.name === 'dstack-gateway' && ['CreateVm', 'RemoveVm', 'UpdateVm', 'StopVm'].includes(c.method));
  assert.deepEqual(gatewayCalls.map((c) => c.method), ['CreateVm'], 'created once; never removed, recreated or restarted');
  assert.equal(byName(h, 'dstack-gateway')?.id, id);
  assert.equal(gatewayEnabled(byName(h, 'shop')), false, 'shop stays on its direct port');
  assert.match(await direct(port), /app shop/);
});
