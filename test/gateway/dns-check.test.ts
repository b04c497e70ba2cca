// Tier 2's DNS check against a real DNS server (the simulated host's, over UDP): what it says for
// each way `*.<domain>` can be wrong, and that the journal hears each result once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkWildcardDns, createDnsMonitor, createResolveA, type DnsTarget } from '../../src/gateway/dns-check.ts';
import { createLogger } from '../../src/log/logger.ts';
import { startSimDns, type SimDns } from '../../src/sim/dns-server.ts';
import { collectLines } from '../log/collect.ts';
import { createManualClock } from '../helpers/manual-clock.ts';
import { defer } from '../helpers/cleanup.ts';

const DOMAIN = 'apps.example.test';
const TARGET: DnsTarget = { domain: DOMAIN, publicIp: '203.0.113.7' };

async function server(t: Parameters<typeof defer>[0]): Promise<SimDns> {
  const dns = await startSimDns({ hostAddresses: ['203.0.113.7'], zones: () => [DOMAIN] });
  defer(t, () => dns.close());
  return dns;
}

const depsFor = (dns: SimDns, hostAddresses: string[] = []) => ({ resolve: createResolveA([dns.server]), servers: [dns.server], hostAddresses: () => hostAddresses });

test('a wildcard that points at public_ip is fine; the name asked is fresh each time, under the domain', async (t) => {
  const dns = await server(t);
  const first = await checkWildcardDns(TARGET, depsFor(dns));
  const second = await checkWildcardDns(TARGET, depsFor(dns));
  assert.deepEqual({ ...first, name: '' }, { record: `*.${DOMAIN}`, expected: ['203.0.113.7'], resolved: ['203.0.113.7'], servers: [dns.server], problem: null, name: '' });
  assert.match(first.name, /^dns-check-[0-9a-f]{8}\.apps\.example\.test$/);
  assert.notEqual(first.name, second.name);
});

test('no record: NXDOMAIN is named with the record to add; the apps are said to be switched anyway', async (t) => {
  const dns = await server(t);
  dns.answer(`*.${DOMAIN}`, 'nxdomain');
  const { problem, resolved } = await checkWildcardDns(TARGET, depsFor(dns));
  assert.deepEqual(resolved, []);
  assert.match(problem ?? '', /^\*\.apps\.example\.test does not resolve \(127\.0\.0\.1:\d+ answered NXDOMAIN for a name under it\); add the DNS record "\*\.apps\.example\.test A 203\.0\.113\.7"/);
  assert.match(problem ?? '', /do not work from outside \(they are switched anyway and keep their direct ports\)$/);
});

test('a record elsewhere (a proxied Cloudflare record, an old address) names both addresses and the record to make', async (t) => {
  const dns = await server(t);
  dns.answer(`*.${DOMAIN}`, ['104.16.0.1', '203.0.113.7']);
  const { problem, resolved } = await checkWildcardDns(TARGET, depsFor(dns));
  assert.deepEqual(resolved, ['104.16.0.1', '203.0.113.7']);
  assert.match(problem ?? '', /resolves to 104\.16\.0\.1, 203\.0\.113\.7 \(asked 127\.0\.0\.1:\d+\), not to public_ip 203\.0\.113\.7; make the record "\*\.apps\.example\.test A 203\.0\.113\.7" \(DNS only/);
});

test('without public_ip the host\'s own addresses are expected, and NAT is mentioned', async (t) => {
  const dns = await server(t);
  const ok = await checkWildcardDns({ domain: DOMAIN, publicIp: undefined }, depsFor(dns, ['192.0.2.5', '203.0.113.7']));
  assert.equal(ok.problem, null);
  dns.answer(`*.${DOMAIN}`, ['198.51.100.1']);
  const wrong = await checkWildcardDns({ domain: DOMAIN, publicIp: undefined }, depsFor(dns, ['192.0.2.5']));
  assert.match(wrong.problem ?? '', /not to this host's addresses \(192\.0\.2\.5; set public_ip in gateway\.toml if it is reached through NAT\); make the record "\*\.apps\.example\.test A 192\.0\.2\.5"/);
});

test('a resolver that does not answer is a check that could not be made, naming the resolver setting', async () => {
  const failing = { resolve: async () => Promise.reject(Object.assign(new Error('queryA ETIMEOUT'), { code: 'ETIMEOUT' })), servers: ['192.0.2.53'], hostAddresses: () => [] };
  const { problem } = await checkWildcardDns(TARGET, failing);
  assert.match(problem ?? '', /^\*\.apps\.example\.test could not be checked: asking 192\.0\.2\.53 for a name under it failed \(ETIMEOUT\); check \[gateway\] dns_servers/);
});

test('the monitor asks once per interval (at once for a new target), warns once per problem and says once when it is fixed', async (t) => {
  const dns = await server(t);
  dns.answer(`*.${DOMAIN}`, 'nxdomain');
  const clock = createManualClock();
  const collected = collectLines();
  const monitor = createDnsMonitor({ check: (target) => checkWildcardDns(target, depsFor(dns)), clock, intervalMs: 60_000, log: createLogger({ level: 'debug', stream: collected.stream }) });
  const dnsLines = () => collected.lines.filter((l) => String(l.fields.msg).startsWith('gateway: DNS: '));
  assert.match((await monitor.observe(TARGET)).problem ?? '', /NXDOMAIN/);
  await monitor.observe(TARGET);
  assert.equal(dns.queries().length, 1, 'cached within the interval');
  await clock.advance(60_000);
  await monitor.observe(TARGET);
  assert.equal(dns.queries().length, 2, 'asked again after it');
  assert.equal(dnsLines().length, 1, 'the same problem is said once');
  assert.equal(dnsLines()[0]!.priority, 4);
  dns.answer(`*.${DOMAIN}`, undefined);
  assert.notEqual((await monitor.observe(TARGET)).problem, null, 'a fix shows at the next check');
  await clock.advance(60_000);
  assert.equal((await monitor.observe(TARGET)).problem, null);
  assert.deepEqual(dnsLines().map((l) => [l.priority, l.fields.msg]), [
    [4, dnsLines()[0]!.fields.msg],
    [6, 'gateway: DNS: *.apps.example.test resolves to 203.0.113.7, this host'],
  ]);
  await monitor.observe({ ...TARGET, domain: 'other.example.test' });
  assert.equal(dns.queries().length, 4, 'a new domain is asked at once');
});
