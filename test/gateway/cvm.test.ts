// The gateway CVM's building blocks: the exact bytes it measures (checked against text written
// here by hand), what its compose hash does and does not depend on, its env, ports and CreateVm
// request, the pre-launch token check run in a real bash, and how its VM is told from others.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { renderManifest } from '../../src/app/manifest.ts';
import { GATEWAY_CONTAINER_IMAGE, GATEWAY_VM_NAME, isGatewayCompose, renderGatewayAppCompose, renderGatewayDockerCompose } from '../../src/gateway/compose.ts';
import { gatewayAdminUrl, gatewayEnv, gatewayPorts, gatewayRpcUrl, gatewayUrls, gatewayVmConfig, renderGatewayCvm, type GatewayCvmInputs } from '../../src/gateway/cvm.ts';
import { gatewayTomlSchema, type GatewayConfig } from '../../src/gateway/schema.ts';
import { GatewaySecrets } from '../../src/gateway/secrets.ts';
import { kmsAppCompose } from '../../src/init/kms-compose.ts';
import { defer } from '../helpers/cleanup.ts';

const run = promisify(execFile);

const LAUNCH_TOKEN = 'launchTOKEN0123456789abcdefghijk';
// printf '%s' launchTOKEN0123456789abcdefghijk | sha256sum
const LAUNCH_TOKEN_SHA256 = 'f7b08f6776f829c01016054f556305d40084c14bab43360ab8ed3266f77f5ec7';
const ADMIN_TOKEN = 'adminTOKEN'.repeat(4) + '01234567';
const APP_ID = '0123456789abcdef0123456789abcdef01234567';

function secretsWith(override: { launch?: string; admin?: string } = {}): GatewaySecrets {
  return new GatewaySecrets({ version: 1, app_id: APP_ID, node_id: 1, admin_api_token: override.admin ?? ADMIN_TOKEN, app_launch_token: override.launch ?? LAUNCH_TOKEN });
}

// gateway.toml through the real schema, so defaults are the file's.
function configOf(file: Record<string, unknown> = {}): GatewayConfig {
  return gatewayTomlSchema('/etc/dstack/gateway.d').parse({ domain: 'apps.example.com', certificate: { email: 'ops@example.com' }, ...file });
}

function inputs(override: Partial<GatewayCvmInputs> = {}): GatewayCvmInputs {
  return { config: configOf(), secrets: secretsWith(), guestHost: '10.0.2.2', ...override };
}

const GOLDEN_COMPOSE = [
  'services:',
  '  gateway:',
  '    image: dstacktee/dstack-gateway:0.5.8@sha256:6eb1dc1a5000f37cc5b0322d3fdb71e7f2e31859b5e3a611634919278cee2411',
  '    network_mode: host',
  '    privileged: true',
  '    restart: always',
  '    volumes:',
  '      - /var/run/dstack.sock:/var/run/dstack.sock',
  '      - /dstack:/dstack',
  '      - data:/data',
  '    environment:',
  '      - WG_ENDPOINT=${WG_ENDPOINT}',
  '      - MY_URL=${MY_URL}',
  '      - BOOTNODE_URL=${BOOTNODE_URL}',
  '      - WG_IP=${WG_IP}',
  '      - WG_RESERVED_NET=${WG_RESERVED_NET}',
  '      - WG_CLIENT_RANGE=${WG_CLIENT_RANGE}',
  '      - NODE_ID=${NODE_ID}',
  '      - RPC_DOMAIN=${RPC_DOMAIN}',
  '      - PROXY_LISTEN_PORT=${PROXY_LISTEN_PORT}',
  '      - RUST_LOG=info,certbot=debug',
  '      - PCCS_URL=${PCCS_URL}',
  '      - PROXY_WORKERS=32',
  '      - MAX_CONNECTIONS_PER_APP=0',
  '      - SYNC_INTERVAL=1m',
  '      - SYNC_TIMEOUT=2m',
  '      - SYNC_PERSIST_INTERVAL=5m',
  '      - SYNC_CONNECTIONS_ENABLED=true',
  '      - SYNC_CONNECTIONS_INTERVAL=30s',
  '      - TIMEOUT_CONNECT=5s',
  '      - TIMEOUT_HANDSHAKE=5s',
  '      - TIMEOUT_CACHE_TOP_N=30s',
  '      - TIMEOUT_DNS_RESOLVE=5s',
  '      - TIMEOUT_DATA_ENABLED=true',
  '      - TIMEOUT_IDLE=10m',
  '      - TIMEOUT_WRITE=5s',
  '      - TIMEOUT_SHUTDOWN=5s',
  '      - TIMEOUT_TOTAL=5h',
  '      - ADMIN_LISTEN_ADDR=0.0.0.0',
  '      - ADMIN_LISTEN_PORT=8001',
  'volumes:',
  '  data:',
  '',
];

const GOLDEN_PRE_LAUNCH = [
  `dstack_gw_expected=$(jq -j '.launch_token_hash // ""' "\${APP_COMPOSE_FILE:-app-compose.json}")`,
  `dstack_gw_actual=$(printf '%s' "\${APP_LAUNCH_TOKEN:-}" | sha256sum | cut -d' ' -f1)`,
  'if [ -z "$dstack_gw_expected" ] || [ "$dstack_gw_expected" != "$dstack_gw_actual" ]; then',
  '  echo "APP_LAUNCH_TOKEN does not match launch_token_hash: the gateway is not started" >&2',
  '  dstack-util notify-host -e boot.error -d "gateway launch token check failed: APP_LAUNCH_TOKEN does not match launch_token_hash" || true',
  '  exit 1',
  'fi',
  'unset dstack_gw_expected dstack_gw_actual',
  'echo "APP_LAUNCH_TOKEN checked"',
  '',
];

// A JSON string body by hand: these texts hold no backslash or control character but newlines,
// so quoting only needs `"` → `\"` and newline → `\n`.
function quoted(lines: readonly string[]): string {
  return lines.map((line) => line.replaceAll('"', '\\"')).join('\\n');
}

const GOLDEN_MANIFEST = [
  '{',
  '  "manifest_version": 2,',
  '  "name": "dstack-gateway",',
  '  "runner": "docker-compose",',
  `  "docker_compose_file": "${quoted(GOLDEN_COMPOSE)}",`,
  '  "kms_enabled": true,',
  '  "gateway_enabled": false,',
  '  "local_key_provider_enabled": false,',
  '  "public_logs": true,',
  '  "public_sysinfo": true,',
  '  "no_instance_id": true,',
  '  "secure_time": false,',
  '  "allowed_envs": [',
  '    "APP_LAUNCH_TOKEN",',
  '    "BOOTNODE_URL",',
  '    "MY_URL",',
  '    "NODE_ID",',
  '    "PROXY_LISTEN_PORT",',
  '    "RPC_DOMAIN",',
  '    "WG_CLIENT_RANGE",',
  '    "WG_ENDPOINT",',
  '    "WG_IP",',
  '    "WG_RESERVED_NET"',
  '  ],',
  `  "pre_launch_script": "${quoted(GOLDEN_PRE_LAUNCH)}",`,
  `  "launch_token_hash": "${LAUNCH_TOKEN_SHA256}"`,
  '}',
].join('\n');

test('the docker-compose file is one gateway service with the pinned image and the v0.5.8 settings', () => {
  assert.equal(GATEWAY_CONTAINER_IMAGE, 'dstacktee/dstack-gateway:0.5.8@sha256:6eb1dc1a5000f37cc5b0322d3fdb71e7f2e31859b5e3a611634919278cee2411');
  assert.equal(renderGatewayDockerCompose(), GOLDEN_COMPOSE.join('\n'));
  assert.ok(!renderGatewayDockerCompose().includes('APP_LAUNCH_TOKEN'), 'the launch token never reaches the container');
});

test('the manifest is byte for byte the golden text, and the compose hash is sha256 of those bytes', () => {
  const { appCompose, composeHash } = renderGatewayCvm(inputs());
  assert.equal(appCompose, GOLDEN_MANIFEST);
  assert.equal(composeHash, createHash('sha256').update(Buffer.from(GOLDEN_MANIFEST, 'utf8')).digest('hex'));
  assert.equal(GATEWAY_VM_NAME, 'dstack-gateway');
});

test('the compose hash changes with the image, the launch token or the env names, and with nothing else', () => {
  const hash = (over: Partial<GatewayCvmInputs> = {}) => renderGatewayCvm(inputs(over)).composeHash;
  const base = hash();
  // Env values, VM settings and the admin token are not measured.
  assert.equal(hash({ guestHost: '192.168.122.1' }), base);
  assert.equal(hash({ config: configOf({ rpc_port: 9302, proxy_port: 8443, public_ip: '198.51.100.4', cvm: { vcpu: 8, memory: 8192, disk: 40 } }) }), base);
  assert.equal(hash({ config: configOf({ domain: undefined, certificate: { mode: 'self-signed' } }) }), base);
  assert.equal(hash({ secrets: secretsWith({ admin: 'Z'.repeat(48) }) }), base);
  assert.equal(hash({ containerImage: GATEWAY_CONTAINER_IMAGE }), base);
  // What is measured.
  const changed = [
    hash({ secrets: secretsWith({ launch: 'X'.repeat(32) }) }),
    hash({ containerImage: 'dstacktee/dstack-gateway:0.5.9@sha256:' + '1'.repeat(64) }),
  ];
  const names = renderGatewayCvm(inputs()).env.map((e) => e.key);
  const byNames = (envNames: string[]) => createHash('sha256').update(renderGatewayAppCompose({ envNames, launchToken: LAUNCH_TOKEN })).digest('hex');
  assert.equal(byNames([...names].reverse()), base, 'allowed_envs is sorted, so the order names come in does not matter');
  changed.push(byNames([...names, 'ADMIN_API_TOKEN']), byNames(names.filter((n) => n !== 'BOOTNODE_URL')));
  for (const other of changed) assert.notEqual(other, base);
  assert.equal(new Set(changed).size, changed.length);
});

test('the env: per-host values from gateway.toml, the secrets and the guest host; v0.5.8 WireGuard addressing for subnet 0', () => {
  assert.deepEqual(gatewayEnv(inputs({ config: configOf({ rpc_port: 9302, proxy_port: 8443 }) })), [
    { key: 'APP_LAUNCH_TOKEN', value: LAUNCH_TOKEN },
    { key: 'BOOTNODE_URL', value: '' },
    { key: 'MY_URL', value: 'https://10.0.2.2:9302' },
    { key: 'NODE_ID', value: '1' },
    { key: 'PROXY_LISTEN_PORT', value: '443' },
    { key: 'RPC_DOMAIN', value: '10.0.2.2' },
    { key: 'WG_CLIENT_RANGE', value: '10.240.0.0/16' },
    { key: 'WG_ENDPOINT', value: '10.0.2.2:9302' },
    { key: 'WG_IP', value: '10.240.0.1/12' },
    { key: 'WG_RESERVED_NET', value: '10.240.0.1/32' },
  ]);
  const { env, appCompose } = renderGatewayCvm(inputs());
  assert.deepEqual(JSON.parse(appCompose).allowed_envs, env.map((e) => e.key), 'the manifest allows exactly the env it is given');
  assert.ok(!env.some((e) => e.value.includes(ADMIN_TOKEN)), 'the 0.5.8 image reads no ADMIN_API_TOKEN, so it is not sent');
});

test('URLs: apps and the gateway itself use https://<guest host>:<rpc_port>; the admin API is plain HTTP on 127.0.0.2:<rpc_port + 1>', () => {
  const config = configOf({ rpc_port: 9302 });
  assert.equal(gatewayRpcUrl(config, '10.0.2.2'), 'https://10.0.2.2:9302');
  assert.deepEqual(gatewayUrls(config, '10.0.2.2'), ['https://10.0.2.2:9302']);
  assert.equal(gatewayAdminUrl(config), 'http://127.0.0.2:9303');
  assert.equal(gatewayAdminUrl(configOf()), 'http://127.0.0.2:9203');
});

test('port mappings: RPC (tcp) and WireGuard (udp) share rpc_port, the proxy is public, the admin API on 127.0.0.2 only, no guest agent', () => {
  assert.deepEqual(gatewayPorts(configOf({ rpc_port: 9302, proxy_port: 8443 })), [
    { protocol: 'tcp', host_address: '0.0.0.0', host_port: 9302, vm_port: 8000 },
    { protocol: 'udp', host_address: '0.0.0.0', host_port: 9302, vm_port: 51820 },
    { protocol: 'tcp', host_address: '0.0.0.0', host_port: 8443, vm_port: 443 },
    { protocol: 'tcp', host_address: '127.0.0.2', host_port: 9303, vm_port: 8001 },
  ]);
});

test('the CreateVm request: its name, the kept app id, [cvm] sizes, the sealed env, the KMS URLs and no gateway_urls', () => {
  const config = configOf({ cvm: { vcpu: 6, memory: 6144, disk: 30 } });
  const { appCompose } = renderGatewayCvm(inputs({ config }));
  const kmsUrls = ['https://10.0.2.2:9201'];
  const request = gatewayVmConfig({ config, secrets: secretsWith(), image: 'dstack-0.5.8', appCompose, encryptedEnv: 'c0ffee', kmsUrls });
  assert.deepEqual(request, {
    name: 'dstack-gateway',
    image: 'dstack-0.5.8',
    compose_file: appCompose,
    vcpu: 6,
    memory: 6144,
    disk_size: 30,
    ports: gatewayPorts(config),
    encrypted_env: 'c0ffee',
    app_id: APP_ID,
    kms_urls: ['https://10.0.2.2:9201'],
    gateway_urls: [],
  });
  assert.notEqual(request.kms_urls, kmsUrls, 'a copy, not the caller\'s array');
  assert.deepEqual(gatewayVmConfig({ config: configOf(), secrets: secretsWith(), image: 'i', appCompose, encryptedEnv: '', kmsUrls }).vcpu, 4);
});

test('isGatewayCompose: the gateway manifest only, not an app or the KMS called dstack-gateway, nor anything unparsable', () => {
  assert.equal(isGatewayCompose(renderGatewayCvm(inputs()).appCompose), true);
  const app = renderManifest({ name: 'dstack-gateway', composeText: 'services: {}\n', kms: true, gateway: false, publicLogs: true, publicSysinfo: true, allowedEnvs: [] });
  assert.equal(isGatewayCompose(app), false);
  assert.equal(isGatewayCompose(kmsAppCompose('[core]\n', '/etc/dstack/kms.toml', 'tdx')), false);
  assert.equal(isGatewayCompose(JSON.stringify({ name: 'web', launch_token_hash: LAUNCH_TOKEN_SHA256 })), false);
  assert.equal(isGatewayCompose(JSON.stringify({ name: 'dstack-gateway', launch_token_hash: 7 })), false);
  for (const junk of ['', 'null', '"dstack-gateway"', '[1]', '{']) assert.equal(isGatewayCompose(junk), false, junk);
});

const hasTools = await run('sh', ['-c', 'command -v bash && command -v jq && command -v sha256sum']).then(
  () => true,
  () => false,
);

// Run the manifest's pre-launch script as app-compose.sh runs it: sourced by bash in the
// directory that holds app-compose.json, with the decrypted env in the environment. `strict`
// is HEAD's app-compose.sh (`set -euo pipefail`, APP_COMPOSE_FILE set); otherwise v0.5.8's.
async function preLaunch(t: { after(fn: () => Promise<void>): void }, env: Record<string, string>, strict: boolean) {
  const dir = await mkdtemp(join(tmpdir(), 'gateway-prelaunch-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'app-compose.json'), renderGatewayCvm(inputs()).appCompose);
  // dstack-util stands in for the guest's: it records what it would tell the host.
  await writeFile(join(dir, 'dstack-util'), `#!/bin/sh\nprintf '%s\\n' "$*" >> "${join(dir, 'notified')}"\n`);
  await chmod(join(dir, 'dstack-util'), 0o755);
  const prologue = strict ? 'set -euo pipefail; APP_COMPOSE_FILE=app-compose.json; ' : '';
  const script = `${prologue}source <(jq -r '.pre_launch_script' app-compose.json); echo containers-started`;
  const result = await run('bash', ['-c', script], { cwd: dir, env: { PATH: `${dir}:${process.env['PATH'] ?? ''}`, ...env } }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, stdout: err.stdout, stderr: err.stderr }),
  );
  const notified = await readFile(join(dir, 'notified'), 'utf8').catch(() => '');
  return { ...result, notified };
}

for (const strict of [false, true]) {
  const shell = strict ? "HEAD's strict app-compose.sh" : "v0.5.8's app-compose.sh";
  test(`pre-launch check under ${shell}: the right APP_LAUNCH_TOKEN starts the containers, a wrong or missing one stops boot with boot.error`, { skip: !hasTools && 'needs bash, jq and sha256sum' }, async (t) => {
    const ok = await preLaunch(t, { APP_LAUNCH_TOKEN: LAUNCH_TOKEN }, strict);
    assert.deepEqual([ok.code, ok.stdout, ok.notified], [0, 'APP_LAUNCH_TOKEN checked\ncontainers-started\n', '']);
    const wrong: ReadonlyArray<Record<string, string>> = [{ APP_LAUNCH_TOKEN: 'X'.repeat(32) }, { APP_LAUNCH_TOKEN: '' }, {}];
    for (const env of wrong) {
      const bad = await preLaunch(t, env, strict);
      assert.equal(bad.code, 1, JSON.stringify(bad));
      assert.equal(bad.stdout, '', 'no container starts');
      assert.match(bad.stderr, /APP_LAUNCH_TOKEN does not match launch_token_hash: the gateway is not started/);
      assert.equal(bad.notified, 'notify-host -e boot.error -d gateway launch token check failed: APP_LAUNCH_TOKEN does not match launch_token_hash\n');
    }
  });
}
