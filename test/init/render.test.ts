import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { configPaths, renderHostConfig, type RenderInputs } from '../../src/init/render.ts';
import { vmmListenAddress } from '../../src/init/derived-keys.ts';
import { getPath, type Doc } from '../../src/init/merge.ts';
import { InitError } from '../../src/init/errors.ts';
import { openAllowlist } from '../../src/auth/allowlist.ts';
import { startAuthWebhook } from '../../src/sim/auth-webhook.ts';
import { initIn, snapshotTree, tempDir } from './helpers.ts';
import { defer } from '../helpers/cleanup.ts';

const PIN = 'a'.repeat(64);
const NEW_PIN = 'b'.repeat(64);

async function setup(t: TestContext, overrides: Record<string, unknown> = {}): Promise<{ root: string; inputs: RenderInputs }> {
  const root = await tempDir(t);
  const init = initIn(root, overrides);
  return {
    root,
    inputs: {
      init,
      vmmUrl: 'unix:/var/run/dstack/vmm.sock',
      authConfigPath: join(init.config_dir, 'auth-config.json'),
      osImagePin: PIN,
      platform: 'tdx',
      // 9201 is taken on this pretend host, so the auto pick is the next port up.
      isPortFree: async (_address, port) => port !== 9201,
    },
  };
}

async function readTomlDoc(path: string): Promise<Doc> {
  return parseToml(await readFile(path, 'utf8'));
}

async function readJsonDoc(path: string): Promise<Doc> {
  return JSON.parse(await readFile(path, 'utf8')) as Doc;
}

test('first render writes every file, and the TOML carries the keys of docs/dstack.md §5.3/§5.4', async (t) => {
  const { inputs } = await setup(t);
  const { init } = inputs;
  const paths = configPaths(init, inputs.authConfigPath);
  const result = await renderHostConfig(inputs);
  assert.equal(result.kmsPort, 9202);
  assert.deepEqual(result.warnings, []);
  assert.deepEqual([...result.written].sort(), Object.values(paths).sort());

  const vmm = await readTomlDoc(paths.vmmToml);
  const expectVmm: [string, unknown][] = [
    ['address', 'unix:/var/run/dstack/vmm.sock'],
    ['reuse', true],
    ['log_level', 'info'],
    ['kms_url', 'https://127.0.0.1:9202'],
    ['run_path', `${init.data_dir}/vm`],
    ['image.path', init.images_dir],
    ['cvm.platform', 'tdx'],
    ['cvm.qemu_path', '/usr/bin/qemu-system-x86_64'],
    ['cvm.kms_urls', ['https://10.0.2.2:9202']],
    ['cvm.gateway_urls', []],
    ['cvm.pccs_url', ''],
    ['cvm.cid_start', 1000],
    ['cvm.cid_pool_size', 1000],
    ['cvm.networking.mode', 'user'],
    ['cvm.networking.net', '10.0.2.0/24'],
    ['cvm.port_mapping.enabled', true],
    ['cvm.port_mapping.address', '127.0.0.1'],
    ['cvm.port_mapping.range', [{ protocol: 'tcp', from: 1, to: 65535 }, { protocol: 'udp', from: 1, to: 65535 }]],
    ['cvm.auto_restart.enabled', true],
    ['auth.enabled', false],
    ['supervisor.exe', '/usr/libexec/dstack/supervisor'],
    ['supervisor.sock', `${init.run_dir}/supervisor.sock`],
    ['supervisor.detached', true],
    ['host_api.address', 'vsock:2'],
    ['host_api.port', 10000],
    ['key_provider.enabled', true],
    ['key_provider.address', '127.0.0.1'],
    ['key_provider.port', 3443],
  ];
  for (const [key, value] of expectVmm) assert.deepEqual(plain(getPath(vmm, key.split('.'))), value, `vmm.toml ${key}`);
  assert.notEqual(getPath(vmm, ['supervisor', 'exe']), '/usr/bin/dstack-supervisor');

  const kms = await readTomlDoc(paths.kmsToml);
  const expectKms: [string, unknown][] = [
    ['rpc.address', '0.0.0.0'],
    ['rpc.port', 8000],
    ['rpc.tls.key', '/kms/certs/rpc.key'],
    ['rpc.tls.certs', '/kms/certs/rpc.crt'],
    ['rpc.tls.mutual.ca_certs', '/kms/certs/tmp-ca.crt'],
    ['rpc.tls.mutual.mandatory', false],
    ['core.cert_dir', '/kms/certs'],
    ['core.enforce_self_authorization', false],
    ['core.image.verify', false],
    ['core.image.cache_dir', '/kms/images'],
    ['core.auth_api.type', 'webhook'],
    ['core.auth_api.webhook.url', 'http://10.0.2.2:8001'],
    ['core.onboard.enabled', true],
    ['core.onboard.auto_bootstrap_domain', '10.0.2.2'],
    ['core.onboard.address', '0.0.0.0'],
    ['core.onboard.port', 8000],
  ];
  for (const [key, value] of expectKms) assert.deepEqual(getPath(kms, key.split('.')), value, `kms.toml ${key}`);

  const auth = await readJsonDoc(paths.authConfig);
  assert.deepEqual(auth['osImages'], [PIN]);
  assert.deepEqual(auth['allowedTcbStatuses'], ['UpToDate']);
  assert.deepEqual(auth['allowedAdvisoryIds'], []);
  assert.deepEqual(auth['kms'], { mrAggregated: [], devices: [], allowAnyDevice: true });
  assert.deepEqual(auth['apps'], {});

  assert.match(await readFile(paths.authSimpleEnv, 'utf8'), new RegExp(`^PORT=8001\nAUTH_CONFIG_PATH=${paths.authConfig}$`, 'm'));
  const kp = await readFile(paths.keyProviderEnv, 'utf8');
  assert.match(kp, /^KEY_PROVIDER_PORT=3443$/m);
  assert.match(kp, /^QCNL_MOUNT=--volume=\/etc\/sgx_default_qcnl\.conf:\/etc\/sgx_default_qcnl\.conf:ro$/m);
});

test('a second render writes zero files and keeps the KMS port', async (t) => {
  const { root, inputs } = await setup(t);
  const first = await renderHostConfig(inputs);
  const before = await snapshotTree(root);
  // Even with the earlier port now "busy" (the KMS CVM holds it), the rendered one is kept.
  const second = await renderHostConfig({ ...inputs, isPortFree: async () => false });
  assert.deepEqual(second.written, []);
  assert.deepEqual(second.warnings, []);
  assert.equal(second.kmsPort, first.kmsPort);
  assert.deepEqual(await snapshotTree(root), before);
});

test("an operator's log_level edit (with a comment) survives re-render without a rewrite", async (t) => {
  const { root, inputs } = await setup(t);
  const paths = configPaths(inputs.init, inputs.authConfigPath);
  await renderHostConfig(inputs);
  const edited = (await readFile(paths.vmmToml, 'utf8')).replace('log_level = "info"', '# more noise while debugging\nlog_level = "debug"');
  await writeFile(paths.vmmToml, edited);
  const before = await snapshotTree(root);

  const result = await renderHostConfig(inputs);
  assert.deepEqual(result.written, []);
  assert.deepEqual(result.warnings, []);
  assert.equal(await readFile(paths.vmmToml, 'utf8'), edited);
  assert.deepEqual(await snapshotTree(root), before);
});

test('an enforced key changed by hand is restored with a warning naming it; other edits stay', async (t) => {
  const { inputs } = await setup(t);
  const paths = configPaths(inputs.init, inputs.authConfigPath);
  const { kmsPort } = await renderHostConfig(inputs);
  const text = (await readFile(paths.vmmToml, 'utf8'))
    .replace('log_level = "info"', 'log_level = "debug"')
    .replace(`kms_urls = [ "https://10.0.2.2:${kmsPort}" ]`, 'kms_urls = [ "https://10.0.2.2:1" ]');
  await writeFile(paths.vmmToml, `${text}\n[extra]\nmine = 1\n`);

  // The lead passes the port the init journal recorded, so the hand edit cannot move the KMS.
  const result = await renderHostConfig({ ...inputs, previousKmsPort: kmsPort });
  assert.deepEqual(result.written, [paths.vmmToml]);
  assert.equal(result.warnings.length, 1);
  assert.match(result.warnings[0] ?? '', /key "cvm\.kms_urls"/);
  const vmm = await readTomlDoc(paths.vmmToml);
  assert.equal(getPath(vmm, ['log_level']), 'debug');
  assert.deepEqual(getPath(vmm, ['cvm', 'kms_urls']), [`https://10.0.2.2:${kmsPort}`]);
  assert.equal(getPath(vmm, ['extra', 'mine']), 1);
});

test('re-render never drops apps; a new image pin is added beside the old one', async (t) => {
  const { inputs } = await setup(t);
  await renderHostConfig(inputs);
  const allowlist = openAllowlist(inputs.authConfigPath);
  await allowlist.addHash('c'.repeat(40), 'd'.repeat(64));
  await allowlist.close();

  const result = await renderHostConfig({ ...inputs, osImagePin: NEW_PIN });
  assert.deepEqual(result.written, [inputs.authConfigPath]);
  assert.match(result.warnings.join('\n'), /key "osImages"/);
  const auth = await readJsonDoc(inputs.authConfigPath);
  assert.deepEqual(auth['osImages'], [PIN, NEW_PIN]);
  assert.deepEqual(auth['apps'], { ['c'.repeat(40)]: { composeHashes: ['d'.repeat(64)], devices: [], allowAnyDevice: true } });
});

test('the rendered auth-config.json, fed to the simulated webhook, allows a registered app and denies others', async (t) => {
  const { inputs } = await setup(t, { allowed_tcb_statuses: ['UpToDate', 'OutOfDate'] });
  await renderHostConfig(inputs);
  const appId = 'e'.repeat(40);
  const hash = 'f'.repeat(64);
  const allowlist = openAllowlist(inputs.authConfigPath);
  await allowlist.addHash(appId, hash);
  await allowlist.close();
  const webhook = await startAuthWebhook({ configPath: inputs.authConfigPath });
  defer(t, () => webhook.close());

  const boot = async (body: Record<string, unknown>): Promise<{ isAllowed: boolean; reason: string }> => {
    const base = { mrAggregated: '', osImageHash: PIN, appId, composeHash: hash, instanceId: '1', deviceId: '', tcbStatus: 'OutOfDate', advisoryIds: [] };
    const res = await fetch(`${webhook.url}/bootAuth/app`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...base, ...body }) });
    return (await res.json()) as { isAllowed: boolean; reason: string };
  };
  assert.deepEqual(await boot({}), { isAllowed: true, reason: '', gatewayAppId: '' });
  assert.equal((await boot({ appId: '1'.repeat(40) })).reason, 'app not registered');
  assert.equal((await boot({ composeHash: '2'.repeat(64) })).reason, 'compose hash not allowed');
  assert.equal((await boot({ tcbStatus: 'Revoked' })).reason, 'TCB status is not allowed');
  assert.equal((await boot({ osImageHash: NEW_PIN })).reason, 'OS image is not allowed');
});

test('an auth-config.json that is not JSON is refused and left untouched', async (t) => {
  const { inputs } = await setup(t);
  await renderHostConfig(inputs);
  await writeFile(inputs.authConfigPath, '{"apps": {"x": ');
  const err = await renderHostConfig(inputs).catch((e: unknown) => e);
  assert.ok(err instanceof InitError);
  assert.equal(err.code, 'INIT_RENDER');
  assert.match(err.message, /auth-config\.json/);
  assert.equal(await readFile(inputs.authConfigPath, 'utf8'), '{"apps": {"x": ');
});

test('kms_port: a configured port is used as is; one outside the tcp ranges is refused', async (t) => {
  const { inputs } = await setup(t, { kms_port: 12000 });
  assert.equal((await renderHostConfig(inputs)).kmsPort, 12000);
  const narrow = await setup(t, { kms_port: 30000, port_ranges: [{ protocol: 'tcp', from: 1, to: 20000 }] });
  const err = await renderHostConfig(narrow.inputs).catch((e: unknown) => e);
  assert.ok(err instanceof InitError);
  assert.equal(err.code, 'INIT_RENDER');
  assert.match(err.message, /kms_port = 30000/);
});

test('kms_port auto: the real loopback probe picks a bindable port inside the range', async (t) => {
  const { inputs } = await setup(t);
  const { isPortFree: _ignored, ...real } = inputs;
  const { kmsPort } = await renderHostConfig(real);
  assert.ok(kmsPort >= 9201 && kmsPort <= 65535, `picked ${kmsPort}`);
});

test('vmmListenAddress turns [vmm] url into a Rocket endpoint', () => {
  assert.equal(vmmListenAddress('unix:/run/dstack/vmm.sock'), 'unix:/run/dstack/vmm.sock');
  assert.equal(vmmListenAddress('http://127.0.0.1:9080'), 'tcp:127.0.0.1:9080');
  assert.throws(() => vmmListenAddress('https://127.0.0.1:9080'), (e: unknown) => e instanceof InitError && e.code === 'INIT_RENDER');
});

// smol-toml hands back null-prototype tables; deepEqual wants ordinary objects.
function plain(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value)) as unknown;
}
