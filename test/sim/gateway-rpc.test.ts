import { test } from 'node:test';
import assert from 'node:assert/strict';
import { admin, httpsGet, startTestGateway } from './gateway-fixtures.ts';

test('the RPC port answers /health without credentials and Info with the best ZT-domain, over HTTPS from the CA', async (t) => {
  const { gw, caPem } = await startTestGateway(t);
  const port = Number(new URL(gw.rpcUrl).port);
  assert.deepEqual(await httpsGet(port, 'localhost', caPem, '/health'), { status: 200, body: 'OK' });
  const before = await httpsGet(port, 'localhost', caPem, '/prpc/Info?json');
  assert.deepEqual(JSON.parse(before.body), { base_domain: '', external_port: 0, app_address_ns_prefix: '_dstack-app-address', version: '0.5.11-sim' });

  await admin(gw, 'AddZtDomain', { domain: 'apps.example.test', port: 9204 });
  const after = JSON.parse((await httpsGet(port, 'localhost', caPem, '/prpc/Info?json')).body) as { base_domain: string; external_port: number };
  assert.deepEqual([after.base_domain, after.external_port], ['apps.example.test', 9204]);
  assert.equal((await httpsGet(port, 'localhost', caPem, '/prpc/RegisterCvm')).status, 400);
});
