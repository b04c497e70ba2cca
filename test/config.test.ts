import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { changedConfigKeys, ConfigError, ConfigSchema, loadConfig, loadConfigWithSource, parseConfig } from '../src/config.ts';
import { defer } from './helpers/cleanup.ts';

const DEFAULTS = ConfigSchema.parse({});
const TEMPLATE = new URL('../templates/supervisor.toml', import.meta.url);

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'config-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  return dir;
}

function invalid(text: string): ConfigError {
  try {
    parseConfig(text, '/etc/dstack/supervisor.toml');
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail(`expected ${JSON.stringify(text)} to be rejected`);
}

// Every key path of a nested object, e.g. "apps.settle_ms".
function keyPaths(value: unknown, prefix = ''): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [prefix];
  return Object.entries(value).flatMap(([k, v]) => keyPaths(v, prefix ? `${prefix}.${k}` : k));
}

test('an empty file means every default, with the key names external tests rely on', () => {
  const config = parseConfig('', 'x.toml');
  assert.deepEqual(config, DEFAULTS);
  assert.equal(config.apps_dir, '/etc/dstack/apps.d');
  assert.equal(config.gateway_dir, '/etc/dstack/gateway.d');
  assert.equal(config.state_dir, '/var/lib/dstack/supervisor');
  assert.deepEqual(config.vmm, { url: 'unix:/var/run/dstack/vmm.sock', token_file: '/etc/dstack/vmm-auth-token', mode: 'protobuf', timeout_ms: 30_000, allow_cleartext_token: false });
  assert.equal(config.auth.config_path, '/etc/dstack/auth-config.json');
  assert.equal(config.init.enabled, true);
  const { apps } = config;
  assert.deepEqual(
    [apps.vcpu, apps.memory, apps.disk, apps.port_address, apps.settle_ms, apps.resync_s, apps.delete_confirm_s, apps.concurrency, apps.owner],
    [2, 2048, 20, '127.0.0.1', 1000, 60, 5, 4, 0],
  );
  assert.deepEqual([apps.max_file_bytes, apps.kms_urls, apps.backoff_initial_s, apps.backoff_max_s], [1024 * 1024, [], 5, 300]);
  assert.equal(typeof apps.image, 'string');
  assert.ok(apps.boot_timeout_s > 0 && apps.shutdown_timeout_s > 0);
  assert.equal(apps.poll_s, 0.5);
  assert.deepEqual(config.sim, { enabled: false, dir: '/var/lib/dstack/supervisor/sim', gpus: [] });
});

test('issue 13 item 6: a [vmm] url that would send the token in clear text to a non-loopback host is refused, naming the key to allow it', () => {
  for (const url of ['http://10.0.0.5:9080', 'tcp:10.0.0.5:9080', 'http://vmm.example:9080', 'http://[fd00::5]:9080', 'http://[::ffff:10.0.0.5]:9080']) {
    const err = invalid(`[vmm]\nurl = "${url}"\n`);
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.equal(err.problems.length, 1, err.message);
    assert.match(err.problems[0] ?? '', /^\[vmm\] url: would send the token of \/etc\/dstack\/vmm-auth-token in clear text to \S+, which is not a loopback address/, url);
    assert.match(err.problems[0] ?? '', /set \[vmm\] allow_cleartext_token = true/);
  }
  assert.match(invalid('[vmm]\nurl = "tcp:10.0.0.5:9080"\n').message, /in clear text to 10\.0\.0\.5,/);
});

test('issue 13 item 6: clear text is allowed with [vmm] allow_cleartext_token = true, without a token, and to loopback, https or a unix socket', () => {
  const allowed = parseConfig('[vmm]\nurl = "http://10.0.0.5:9080"\nallow_cleartext_token = true\n', 'x.toml');
  assert.equal(allowed.vmm.allow_cleartext_token, true);
  assert.equal(parseConfig('[vmm]\nurl = "http://10.0.0.5:9080"\ntoken_file = ""\n', 'x.toml').vmm.url, 'http://10.0.0.5:9080');
  const fine = ['http://127.0.0.1:9080', 'http://127.8.9.10:9080', 'tcp:127.0.0.1:9080', 'http://localhost:9080', 'tcp:localhost:9080', 'http://[::1]:9080', 'tcp:[::1]:9080', 'http://[::ffff:127.0.0.1]:9080', 'https://10.0.0.5:9080', 'unix:/run/dstack/vmm.sock'];
  for (const url of fine) assert.equal(parseConfig(`[vmm]\nurl = "${url}"\n`, 'x.toml').vmm.url, url);
});

test('values from the file override defaults and come back as plain objects (smol-toml gives null prototypes)', () => {
  const config = parseConfig(
    'apps_dir = "/srv/apps.d"\n[apps]\nsettle_ms = 250\nkms_urls = ["https://10.0.0.1:9201"]\n[sim]\nenabled = true\ndir = "/tmp/sim"\n[init]\nenabled = false\n',
    'x.toml',
  );
  assert.equal(config.apps_dir, '/srv/apps.d');
  assert.equal(config.apps.settle_ms, 250);
  assert.equal(config.apps.resync_s, 60);
  assert.deepEqual(config.apps.kms_urls, ['https://10.0.0.1:9201']);
  assert.deepEqual(config.sim, { enabled: true, dir: '/tmp/sim', gpus: [] });
  assert.equal(config.init.enabled, false);
  assert.equal(Object.getPrototypeOf(config.apps), Object.prototype);
});

test('[sim] gpus: kind says whether a fake device is a GPU (the default, as before the key) or an NVSwitch; another kind is refused', () => {
  const config = parseConfig(
    '[sim]\ngpus = [{ slot = "0000:18:00.0", product_id = "10de:2335" }, { slot = "05:00.0", product_id = "10de:22a3", driver = "nvidia-nvswitch", kind = "nvswitch" }]\n',
    'x.toml',
  );
  assert.deepEqual(config.sim.gpus.map((g) => ({ ...g })), [
    { slot: '0000:18:00.0', product_id: '10de:2335', driver: 'vfio-pci', kind: 'gpu' },
    { slot: '05:00.0', product_id: '10de:22a3', driver: 'nvidia-nvswitch', kind: 'nvswitch' },
  ]);
  assert.match(invalid('[sim]\ngpus = [{ slot = "0000:05:00.0", product_id = "10de:22a3", kind = "bridge" }]\n').message, /kind/);
});

test('a wrong type names the file, the key as it appears in the file, and the problem', () => {
  const err = invalid('[apps]\nsettle_ms = "soon"\n');
  assert.equal(err.code, 'CONFIG_INVALID');
  assert.match(err.message, /^\/etc\/dstack\/supervisor\.toml: \[apps\] settle_ms: .*number/);
  assert.equal(invalid('apps_dir = 3\n').problems[0]?.startsWith('apps_dir: '), true);
  assert.match(invalid('[apps]\nkms_urls = ["not a url"]\n').message, /\[apps\] kms_urls\[0\]: /);
  assert.match(invalid('[vmm]\nmode = "xml"\n').message, /\[vmm\] mode: /);
  assert.match(invalid('[vmm]\nurl = "/var/run/vmm.sock"\n').message, /\[vmm\] url: must be "unix:\/path", "tcp:host:port"/);
  assert.match(invalid('apps = 3\n').message, /: \[apps\]: /);
  assert.match(invalid('[apps]\nport_address = "localhost"\n').message, /\[apps\] port_address: must be an IPv4 or IPv6 address/);
});

test('issue 14: [gateway] dns_servers takes addresses as node:dns does, with or without a port, and refuses names', () => {
  assert.deepEqual(DEFAULTS.gateway.dns_servers, []);
  const servers = ['1.1.1.1', '1.1.1.1:53', '2606:4700:4700::1111', '[2606:4700:4700::1111]:53', '127.0.0.1:5353'];
  assert.deepEqual(parseConfig(`[gateway]\ndns_servers = ${JSON.stringify(servers)}\n`, 'x.toml').gateway.dns_servers, servers);
  for (const bad of ['dns.google', '1.1.1.1:99999', '[1.1.1.1]:53', '1.1.1:53', '']) {
    assert.match(invalid(`[gateway]\ndns_servers = [${JSON.stringify(bad)}]\n`).message, /\[gateway\] dns_servers\[0\]: must be an IP address, optionally with a port/, bad);
  }
});

test('unknown keys are errors, at the top level and inside a section', () => {
  const err = invalid('appsdir = "/x"\n[apps]\nsettle = 1\n[nope]\n');
  assert.equal(err.code, 'CONFIG_INVALID');
  assert.deepEqual(err.problems.map((p) => p.split(': ')[0]).sort(), ['[apps] settle', 'appsdir', 'nope']);
  assert.match(err.message, /\[apps\] settle: unknown key/);
  assert.match(invalid('[init]\nbogus = 1\n').message, /\[init\] bogus: unknown key/);
});

test('[apps] sizes are held to what a CVM can have, and privileged_ports to ports below 1024 (issue 13 item 5)', () => {
  assert.match(invalid('[apps]\nmemory = 1e300\n').message, /\[apps\] memory: /);
  assert.match(invalid('[apps]\nmemory = 67108865\n').message, /\[apps\] memory: must be at most 67108864 MB, the most a CVM can have/);
  assert.match(invalid('[apps]\nvcpu = 100000\n').message, /\[apps\] vcpu: must be at most 1024 vCPUs/);
  assert.match(invalid('[apps]\ndisk = 65537\n').message, /\[apps\] disk: must be at most 65536 GB/);
  assert.match(invalid('[apps]\nprivileged_ports = [80, 8080]\n').message, /\[apps\] privileged_ports\[1\]: must be below 1024/);
  assert.deepEqual(parseConfig('[apps]\nprivileged_ports = [80, 443]\nvcpu = 1024\n', 'x.toml').apps.privileged_ports, [80, 443]);
});

test('cross-key checks name the key to fix', () => {
  assert.match(invalid('[apps]\nbackoff_initial_s = 60\nbackoff_max_s = 10\n').message, /\[apps\] backoff_max_s: must be at least backoff_initial_s/);
});

test('a TOML syntax error gives file, line and column', () => {
  const err = invalid('[apps]\nvcpu = \n');
  assert.equal(err.code, 'CONFIG_INVALID');
  assert.match(err.message, /^\/etc\/dstack\/supervisor\.toml:2:\d+: not valid TOML: /);
});

test('a missing file at the default path means all defaults', async (t) => {
  const dir = await tempDir(t);
  assert.deepEqual(await loadConfig(undefined, { env: {}, defaultPath: join(dir, 'supervisor.toml') }), DEFAULTS);
});

test('a missing file that was asked for by name or by DSTACK_SUPERVISOR_CONFIG is an error', async (t) => {
  const dir = await tempDir(t);
  const missing = join(dir, 'missing.toml');
  await assert.rejects(loadConfig(missing, { env: {} }), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.code, 'CONFIG_UNREADABLE');
    assert.match(err.message, new RegExp(`^${missing}: no such file`));
    return true;
  });
  const fromEnv = loadConfig(undefined, { env: { DSTACK_SUPERVISOR_CONFIG: missing }, defaultPath: join(dir, 'default.toml') });
  await assert.rejects(fromEnv, { code: 'CONFIG_UNREADABLE' });
  await assert.rejects(loadConfig(dir, { env: {} }), { code: 'CONFIG_UNREADABLE' });
});

test('issue 15: loadConfigWithSource says which file it read, or that the default path is absent', async (t) => {
  const dir = await tempDir(t);
  const defaultPath = join(dir, 'supervisor.toml');
  assert.deepEqual((await loadConfigWithSource(undefined, { env: {}, defaultPath })).source, { path: defaultPath, found: false });
  await writeFile(defaultPath, '');
  assert.deepEqual((await loadConfigWithSource(undefined, { env: {}, defaultPath })).source, { path: defaultPath, found: true });
  const named = join(dir, 'other.toml');
  await writeFile(named, '');
  assert.deepEqual((await loadConfigWithSource(undefined, { env: { DSTACK_SUPERVISOR_CONFIG: named }, defaultPath })).source, { path: named, found: true });
});

test('issue 15: changedConfigKeys names each changed key as in the file, a list as one key', () => {
  const before = parseConfig('apps_dir = "/a"\n[apps]\nresync_s = 60\nkms_urls = ["https://a:1"]\n', 'before.toml');
  assert.deepEqual(changedConfigKeys(before, before), []);
  const after = parseConfig('apps_dir = "/b"\n[apps]\nresync_s = 30\nkms_urls = ["https://a:1", "https://b:2"]\n[vmm]\ntimeout_ms = 1234\n', 'after.toml');
  assert.deepEqual(changedConfigKeys(before, after), ['apps_dir', '[vmm] timeout_ms', '[apps] resync_s', '[apps] kms_urls']);
});

test('loadConfig reads the file named by DSTACK_SUPERVISOR_CONFIG', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'custom.toml');
  await writeFile(file, '[apps]\nconcurrency = 9\n');
  const config = await loadConfig(undefined, { env: { DSTACK_SUPERVISOR_CONFIG: file } });
  assert.equal(config.apps.concurrency, 9);
  await writeFile(file, '[apps]\nconcurrency = 0\n');
  await assert.rejects(loadConfig(file), (err: unknown) => err instanceof ConfigError && err.message.startsWith(`${file}: [apps] concurrency: `));
});

test('the shipped template parses to exactly the defaults, as shipped and with every line uncommented', async () => {
  const text = await readFile(TEMPLATE, 'utf8');
  assert.deepEqual(parseConfig(text, 'templates/supervisor.toml'), DEFAULTS);
  const uncommented = text.replace(/^#([a-z0-9_]+ = .*)$/gm, '$1');
  assert.deepEqual(parseConfig(uncommented, 'templates/supervisor.toml'), DEFAULTS);
  assert.deepEqual(keyPaths({ ...parseToml(uncommented) }).sort(), keyPaths(DEFAULTS).sort(), 'the template lists every key once');
});
