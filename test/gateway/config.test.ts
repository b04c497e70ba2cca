// gateway.d/gateway.toml (issue 14): the keys, their defaults, the rules between them, and that
// every refusal names the key and the fix. The file checks and the token file are in files.test.ts.
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { ACME, gatewayDir, load, on, refused, TOKEN, writeToken, writeToml } from './helpers.ts';

test('no gateway.toml, or no gateway.d at all, is Tier 2 off', async (t) => {
  const dir = await gatewayDir(t);
  assert.deepEqual(await load(join(dir, 'gateway.toml')), { kind: 'off' });
  assert.deepEqual(await load(join(dir, 'missing.d', 'gateway.toml')), { kind: 'off' });
});

test('defaults: a domain, an email and the token file beside gateway.toml are all ACME mode needs', async (t) => {
  const dir = await gatewayDir(t);
  const file = await writeToml(dir, ACME);
  const tokenFile = await writeToken(dir);
  const gw = on(await load(file));
  assert.equal(gw.baseDomain, 'apps.example.com');
  assert.equal(gw.token?.reveal(), TOKEN);
  assert.deepEqual(gw.config, {
    domain: 'apps.example.com',
    apps: 'opt-in',
    proxy_port: 443,
    rpc_port: 9202,
    certificate: { mode: 'acme', email: 'ops@example.com', staging: false, dns_provider: 'cloudflare', token_file: tokenFile },
    cvm: { image: '', vcpu: 4, memory: 4096, disk: 20 },
  });
});

test('every key of the issue can be set, and comes back as written', async (t) => {
  const dir = await gatewayDir(t);
  await mkdir(join(dir, 'elsewhere'));
  const written = {
    domain: 'gw.example.org',
    apps: 'all',
    public_ip: '203.0.113.7',
    proxy_port: 8443,
    rpc_port: 9300,
    certificate: { mode: 'acme', email: 'ops@example.org', staging: true, dns_provider: 'cloudflare', token_file: await writeToken(join(dir, 'elsewhere')) },
    cvm: { image: 'dstack-0.5.11', vcpu: 8, memory: 8192, disk: 40 },
  };
  const gw = on(await load(await writeToml(dir, stringifyToml(written))));
  assert.deepEqual(gw.config, written);
  assert.equal(gw.baseDomain, 'gw.example.org', 'public_ip does not change the base when there is a domain');
});

test('an empty gateway.toml is no-domain mode: self-signed, base <a-b-c-d>.sslip.io from the host address, no token read', async (t) => {
  const dir = await gatewayDir(t);
  const gw = on(await load(await writeToml(dir, ''), { hostAddress: '198.51.100.23' }));
  assert.equal(gw.baseDomain, '198-51-100-23.sslip.io');
  assert.equal(gw.config.certificate.mode, 'self-signed');
  assert.equal(gw.config.domain, undefined);
  assert.equal(gw.token, null);
});

test('public_ip names the no-domain base, before the host address', async (t) => {
  const dir = await gatewayDir(t);
  const file = await writeToml(dir, 'public_ip = "203.0.113.7"\n');
  assert.equal(on(await load(file, { hostAddress: '10.0.2.2' })).baseDomain, '203-0-113-7.sslip.io');
  assert.equal(on(await load(file)).baseDomain, '203-0-113-7.sslip.io');
});

test('no domain and no IPv4 address to name the base by: public_ip is named, with the fix', async (t) => {
  const dir = await gatewayDir(t);
  const file = await writeToml(dir, '[certificate]\nmode = "self-signed"\n');
  for (const hostAddress of [undefined, 'fd00::1', 'host.example']) {
    const err = refused(await load(file, hostAddress === undefined ? {} : { hostAddress }), 'GATEWAY_CONFIG_INVALID', file);
    assert.match(err.message, /: public_ip: is needed when there is no domain .*sslip\.io.*; set public_ip = "203\.0\.113\.7" .*, or set domain$/);
    if (hostAddress !== undefined) assert.ok(err.message.includes(`the host address ${hostAddress} is not an IPv4 address`), err.message);
  }
});

test('acme without a domain is refused at [certificate] mode, saying why: DNS-01 on sslip.io\'s zone is impossible', async (t) => {
  const dir = await gatewayDir(t);
  await writeToken(dir);
  const file = await writeToml(dir, '[certificate]\nmode = "acme"\nemail = "ops@example.com"\n');
  const err = refused(await load(file, { hostAddress: '203.0.113.7' }), 'GATEWAY_CONFIG_INVALID', file);
  assert.deepEqual(err.problems.map((p) => p.split(': ')[0]), ['[certificate] mode']);
  assert.match(err.message, /"acme" needs a domain: .*DNS-01 record in sslip\.io's zone, which only sslip\.io can write; set domain = "apps\.example\.com" .*, or set mode = "self-signed"/);
});

test('acme needs an email; self-signed does not', async (t) => {
  const dir = await gatewayDir(t);
  await writeToken(dir);
  const file = await writeToml(dir, 'domain = "apps.example.com"\n');
  const err = refused(await load(file), 'GATEWAY_CONFIG_INVALID', file);
  assert.match(err.message, /: \[certificate\] email: is needed for an ACME certificate .*; add email = "ops@example\.com" under \[certificate\], or set mode = "self-signed"$/);
  const gw = on(await load(await writeToml(dir, 'domain = "apps.example.com"\n[certificate]\nmode = "self-signed"\n')));
  assert.equal(gw.baseDomain, 'apps.example.com');
  assert.equal(gw.token, null);
});

test('a domain under sslip.io or nip.io cannot have an ACME certificate; self-signed is fine', async (t) => {
  const dir = await gatewayDir(t);
  await writeToken(dir);
  for (const [domain, zone] of [['1-2-3-4.sslip.io', 'sslip.io'], ['apps.10.0.0.1.nip.io', 'nip.io']] as const) {
    const file = await writeToml(dir, `domain = "${domain}"\n[certificate]\nemail = "ops@example.com"\n`);
    const err = refused(await load(file), 'GATEWAY_CONFIG_INVALID', file);
    assert.match(err.message, new RegExp(`: domain: is under ${zone.replace('.', '\\.')}, whose DNS zone only .* set \\[certificate\\] mode = "self-signed"$`));
    await writeToml(dir, `domain = "${domain}"\n[certificate]\nmode = "self-signed"\n`);
    assert.equal(on(await load(file)).baseDomain, domain);
  }
});

test('proxy_port and rpc_port must differ; the problem is put on rpc_port', async (t) => {
  const dir = await gatewayDir(t);
  const file = await writeToml(dir, 'public_ip = "203.0.113.7"\nproxy_port = 9202\n');
  const err = refused(await load(file), 'GATEWAY_CONFIG_INVALID', file);
  assert.match(err.message, /: rpc_port: must differ from proxy_port \(both are 9202\): .*; change one of them$/);
});

test('the admin API takes host port rpc_port + 1: rpc_port 65535, or proxy_port on that port, is refused', async (t) => {
  const dir = await gatewayDir(t);
  const file = await writeToml(dir, 'public_ip = "203.0.113.7"\nrpc_port = 65535\n');
  assert.match(refused(await load(file), 'GATEWAY_CONFIG_INVALID', file).message, /: rpc_port: must be at most 65534: the host port after it is the gateway's admin API .*; choose a lower port$/);
  await writeToml(dir, 'public_ip = "203.0.113.7"\nrpc_port = 9202\nproxy_port = 9203\n');
  assert.match(refused(await load(file), 'GATEWAY_CONFIG_INVALID', file).message, /: proxy_port: must not be rpc_port \+ 1 \(9203\): that host port is the gateway's admin API .*; change one of them$/);
  await writeToml(dir, 'public_ip = "203.0.113.7"\nrpc_port = 9202\nproxy_port = 9201\n');
  on(await load(file));
});

// [gateway.toml text, the key the message names, what it says to do]
const VALUE_ERRORS: ReadonlyArray<readonly [string, string, RegExp]> = [
  ['proxy_port = 0', 'proxy_port', /must be a port number from 1 to 65535/],
  ['proxy_port = 65536', 'proxy_port', /must be a port number from 1 to 65535/],
  ['rpc_port = 92.5', 'rpc_port', /must be a port number from 1 to 65535/],
  ['rpc_port = "9202"', 'rpc_port', /must be a port number from 1 to 65535/],
  ['apps = "some"', 'apps', /must be "opt-in" .* or "all"/],
  ['public_ip = "203.0.113"', 'public_ip', /must be an IPv4 address such as "203\.0\.113\.7"/],
  ['public_ip = "2001:db8::1"', 'public_ip', /must be an IPv4 address/],
  ['domain = "Apps.Example.com"', 'domain', /must be a lower-case DNS name .* such as "apps\.example\.com"/],
  ['domain = "*.example.com"', 'domain', /no "\*\."/],
  ['domain = "example"', 'domain', /two or more labels/],
  ['domain = "example.com."', 'domain', /no trailing dot/],
  ['domain = "203.0.113.7"', 'domain', /not an IP address/],
  ['domain = "-bad.example.com"', 'domain', /must be a lower-case DNS name/],
  [`domain = "${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(30)}.com"`, 'domain', /must be at most 205 characters, so that <app id>-<port>\.<domain> stays a valid DNS name/],
  ['domain = 3', 'domain', /must be a domain name such as "apps\.example\.com"/],
  ['certificate = 3', '[certificate]', /must be a table: write \[certificate\] on a line of its own/],
  ['[certificate]\nmode = "letsencrypt"', '[certificate] mode', /must be "acme" .* or "self-signed"/],
  ['[certificate]\nemail = "ops"', '[certificate] email', /must be an email address such as "ops@example\.com"/],
  ['[certificate]\nstaging = "yes"', '[certificate] staging', /must be true .* or false/],
  ['[certificate]\ndns_provider = "route53"', '[certificate] dns_provider', /must be "cloudflare", the only DNS provider the dstack gateway supports/],
  ['[certificate]\ntoken_file = "cloudflare.token"', '[certificate] token_file', /must be an absolute path such as "\/etc\/dstack\/gateway\.d\/cloudflare\.token"/],
  ['[cvm]\nimage = "../etc"', '[cvm] image', /must be a guest image directory name .*, or "" for the image init installed/],
  ['[cvm]\nvcpu = 0', '[cvm] vcpu', /must be a whole number of vCPUs from 1 to 1024/],
  ['[cvm]\nmemory = 4.5', '[cvm] memory', /must be a whole number of MB/],
  ['[cvm]\nmemory = 67108865', '[cvm] memory', /must be at most 67108864 MB, the most a CVM can have/],
  ['[cvm]\ndisk = "20G"', '[cvm] disk', /must be a whole number of GB/],
];

test('every bad value is refused naming the key and what to write instead', async (t) => {
  const dir = await gatewayDir(t);
  for (const [text, key, fix] of VALUE_ERRORS) {
    const file = await writeToml(dir, `${text}\n`);
    const err = refused(await load(file, { hostAddress: '203.0.113.7' }), 'GATEWAY_CONFIG_INVALID', file);
    assert.equal(err.problems.length, 1, err.message);
    assert.ok(err.problems[0]?.startsWith(`${key}: `), `${text}: ${err.message}`);
    assert.match(err.message, fix, text);
  }
});

test('a token pasted into a key is refused without being quoted', async (t) => {
  const dir = await gatewayDir(t);
  for (const key of ['domain', 'public_ip', 'apps', '[certificate]\nemail', '[certificate]\ntoken_file', '[certificate]\nmode']) {
    const file = await writeToml(dir, `${key} = "${TOKEN}"\n`);
    refused(await load(file, { hostAddress: '203.0.113.7' }), 'GATEWAY_CONFIG_INVALID', file);
  }
});

test('unknown keys are errors, at the top level and inside a table, each named with the fix', async (t) => {
  const dir = await gatewayDir(t);
  const file = await writeToml(dir, 'domian = "apps.example.com"\n[certificate]\nemial = "ops@example.com"\n[cvm]\ncpus = 4\n[proxy]\nport = 443\n');
  const err = refused(await load(file), 'GATEWAY_CONFIG_INVALID', file);
  assert.deepEqual(err.problems.map((p) => p.split(': ')[0]).sort(), ['[certificate] emial', '[cvm] cpus', 'domian', 'proxy']);
  for (const problem of err.problems) assert.match(problem, /: unknown key; remove it or correct its spelling \(every key is listed in gateway\.d\/README and the operator guide\)$/);
});

test('a TOML syntax error gives the file, line and column', async (t) => {
  const dir = await gatewayDir(t);
  const file = await writeToml(dir, `domain = "apps.example.com"\ntoken = ${TOKEN}\n`);
  const err = refused(await load(file), 'GATEWAY_CONFIG_INVALID', file);
  assert.match(err.message, new RegExp(`^${file}:2:\\d+: not valid TOML: `));
});

// Every key path of a nested object, e.g. "certificate.email".
function keyPaths(value: unknown, prefix = ''): string[] {
  if (value === null || typeof value !== 'object') return [prefix];
  return Object.entries(value).flatMap(([k, v]) => keyPaths(v, prefix ? `${prefix}.${k}` : k));
}

test('docs: the operator guide\'s example sets every key, each to its default but domain, public_ip and email; the guide and gateway.d/README name every key', async (t) => {
  const dir = await gatewayDir(t);
  const tokenFile = await writeToken(dir);
  const guide = await readFile(new URL('../../docs/operator-guide.md', import.meta.url), 'utf8');
  const section = guide.slice(guide.indexOf('\n## 9. '));
  const example = /```toml\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(example, 'section 9 has a toml example');
  const documented = on(await load(await writeToml(dir, example.replace(/^token_file = .*$/m, `token_file = "${tokenFile}"`))));
  const minimal = on(await load(await writeToml(dir, `public_ip = "203.0.113.7"\n${ACME}`)));
  assert.deepEqual(documented.config, minimal.config);
  const keys = keyPaths(documented.config);
  assert.deepEqual(keyPaths({ ...parseToml(example) }).sort(), [...keys].sort(), 'the example sets every key once');
  const readme = await readFile(new URL('../../packaging/files/gateway.d.README', import.meta.url), 'utf8');
  for (const key of keys.map((k) => k.split('.').at(-1) ?? k)) {
    assert.ok(section.includes(`\`${key}\``) || section.includes(` ${key}\``), `the guide names ${key}`);
    assert.match(readme, new RegExp(`\\b${key}\\b`), `gateway.d/README names ${key}`);
  }
});
