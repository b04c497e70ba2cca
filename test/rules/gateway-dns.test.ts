// Issue 14's "DNS not resolving to the host": once the gateway serves, the supervisor asks a real
// resolver (the simulated host's DNS server, over UDP) for a name under `*.<domain>`. When it does
// not point at public_ip, the gateway's status says what resolves to what and the record to add,
// the journal warns once, and the apps are switched anyway (their registration needs no DNS) and
// keep their direct ports. A fixed record clears the warning at the next resync.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitUntil } from '../helpers/harness.ts';
import { byName, direct, DOMAIN, gatewayEnabled, withGatewayApp, writeGatewayToml } from '../helpers/gateway.ts';
import { readGatewayStatus } from '../../src/status/store.ts';
import { formatGatewayStatus } from '../../src/status/gateway-text.ts';
import { buildStatusReport } from '../../src/status/report.ts';

test('*.<domain> pointing elsewhere: the status names both addresses and the record to add, one journal warning, apps switched anyway on their direct ports; fixing it clears the warning', { timeout: 60_000 }, async (t) => {
  const { h, port, ports } = await withGatewayApp(t);
  h.sim.dns.answer(`*.${DOMAIN}`, ['198.51.100.4']);
  await writeGatewayToml(h, ports);
  const status = await waitUntil(async () => {
    const s = await readGatewayStatus(h.config.state_dir);
    return s?.phase === 'serving' && s.switching === null && s.dns?.problem && gatewayEnabled(byName(h, 'shop')) ? s : undefined;
  }, 'serving with a DNS problem, shop switched', 30_000);
  assert.deepEqual({ ...status.dns, problem: undefined }, { record: `*.${DOMAIN}`, expected: ['127.0.0.1'], resolved: ['198.51.100.4'], servers: [h.sim.dns.server], problem: undefined });
  const problem = /^\*\.apps\.example\.test resolves to 198\.51\.100\.4 \(asked 127\.0\.0\.1:\d+\), not to public_ip 127\.0\.0\.1; make the record "\*\.apps\.example\.test A 127\.0\.0\.1" .*the apps' https:\/\/ names do not work from outside \(they are switched anyway and keep their direct ports\)$/;
  assert.match(status.dns?.problem ?? '', problem);
  assert.match(formatGatewayStatus(status), /^gateway: serving \(\*\.apps\.example\.test\): serving \*\.apps\.example\.test on port \d+\n  dns: \*\.apps\.example\.test resolves to 198\.51\.100\.4/);
  assert.equal(buildStatusReport({ path: 'x', found: true }, null, null, [], status).gateway?.dns?.resolved[0], '198.51.100.4', 'status --json carries it');
  assert.match(await direct(port), /app shop/, 'shop still answers on its direct port');
  // Asked again at each resync (2 s in the harness), and said only once.
  const asked = h.sim.dns.queries().length;
  await waitUntil(() => h.sim.dns.queries().length >= asked + 2, 'two more checks');
  const warnings = () => h.logs.filter((l) => l.fields.APP === 'gateway' && String(l.fields.msg).startsWith('gateway: DNS: '));
  assert.equal(warnings().length, 1, 'one journal line for the same problem');
  assert.equal(warnings()[0]!.priority, 4);
  assert.match(String(warnings()[0]!.fields.msg).slice('gateway: DNS: '.length), problem);

  h.sim.dns.answer(`*.${DOMAIN}`, undefined);
  const fixed = await waitUntil(async () => {
    const s = await readGatewayStatus(h.config.state_dir);
    return s?.dns && s.dns.problem === null ? s : undefined;
  }, 'the DNS problem cleared', 10_000);
  assert.deepEqual(fixed.dns?.resolved, ['127.0.0.1']);
  assert.match(formatGatewayStatus(fixed), /\n  dns: \*\.apps\.example\.test resolves to 127\.0\.0\.1 \(this host\)$/);
  assert.deepEqual(warnings().map((l) => [l.priority, l.fields.msg]).slice(1), [[6, 'gateway: DNS: *.apps.example.test resolves to 127.0.0.1, this host']]);
});

test('no record at all (NXDOMAIN): the status says so with the record to add', { timeout: 60_000 }, async (t) => {
  const { h, ports } = await withGatewayApp(t);
  h.sim.dns.answer(`*.${DOMAIN}`, 'nxdomain');
  await writeGatewayToml(h, ports);
  const status = await waitUntil(async () => {
    const s = await readGatewayStatus(h.config.state_dir);
    return s?.phase === 'serving' && s.dns?.problem ? s : undefined;
  }, 'serving with a DNS problem', 30_000);
  assert.match(status.dns?.problem ?? '', /^\*\.apps\.example\.test does not resolve \(127\.0\.0\.1:\d+ answered NXDOMAIN for a name under it\); add the DNS record "\*\.apps\.example\.test A 127\.0\.0\.1" at the domain's DNS provider/);
  assert.deepEqual(status.dns?.resolved, []);
});
