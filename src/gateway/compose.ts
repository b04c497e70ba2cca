// What the gateway CVM measures: its docker-compose file and its app-compose manifest (issue 14,
// "Enable"). Our own text, carrying the settings of upstream's gateway/dstack-app at the revision
// the pinned image was built from, so the image and its compose always match (docs/dstack.md "Tier 2: the gateway CVM", Image:
// the digest in upstream's deploy script runs an older entrypoint than the compose beside it).
import { createHash } from 'node:crypto';

// The CVM's name; the supervisor finds its gateway by it, the app id and isGatewayCompose.
export const GATEWAY_VM_NAME = 'dstack-gateway';

// dstack-gateway 0.5.8, the release upstream's own end-to-end suite runs (test-suites/
// full-stack-compose/run-upgrade-e2e.sh pins this digest). It is built by .github/workflows/
// gateway-release.yml from tag gateway-v0.5.8 (d5eb4a47): v0.5.8 plus d3719758, which enables
// cluster sync whenever NODE_ID > 0 instead of only with a BOOTNODE_URL. Its compose
// (gateway/dstack-app/docker-compose.yaml) is the same as v0.5.8's; its entrypoint
// (builder/entrypoint.sh) reads no ADMIN_API_TOKEN, and its admin API has no authentication at all
// (that came after v0.5.11, 87573b15), which is why cvm.ts publishes it on a loopback address no
// CVM can reach.
export const GATEWAY_CONTAINER_IMAGE = 'dstacktee/dstack-gateway:0.5.8@sha256:6eb1dc1a5000f37cc5b0322d3fdb71e7f2e31859b5e3a611634919278cee2411';

// The variables the compose takes from the encrypted env (cvm.ts gatewayEnv gives their values).
// Only names are measured (allowed_envs), so the per-host values can change without a new hash.
// APP_LAUNCH_TOKEN is read by the pre-launch check only and never reaches the container.
const FROM_ENV = ['WG_ENDPOINT', 'MY_URL', 'BOOTNODE_URL', 'WG_IP', 'WG_RESERVED_NET', 'WG_CLIENT_RANGE', 'NODE_ID', 'RPC_DOMAIN', 'PROXY_LISTEN_PORT'] as const;

// The tuning the v0.5.8 compose gives as `${NAME:-default}` with no env to override it, written
// out so the published, measured compose states the whole configuration. PCCS_URL is the one
// left to the guest: app-compose.sh exports it from the host's sys-config before compose runs.
const FIXED: ReadonlyArray<readonly [string, string]> = [
  ['RUST_LOG', 'info,certbot=debug'],
  ['PCCS_URL', '${PCCS_URL}'],
  ['PROXY_WORKERS', '32'],
  ['MAX_CONNECTIONS_PER_APP', '0'],
  ['SYNC_INTERVAL', '1m'],
  ['SYNC_TIMEOUT', '2m'],
  ['SYNC_PERSIST_INTERVAL', '5m'],
  ['SYNC_CONNECTIONS_ENABLED', 'true'],
  ['SYNC_CONNECTIONS_INTERVAL', '30s'],
  ['TIMEOUT_CONNECT', '5s'],
  ['TIMEOUT_HANDSHAKE', '5s'],
  ['TIMEOUT_CACHE_TOP_N', '30s'],
  ['TIMEOUT_DNS_RESOLVE', '5s'],
  ['TIMEOUT_DATA_ENABLED', 'true'],
  ['TIMEOUT_IDLE', '10m'],
  ['TIMEOUT_WRITE', '5s'],
  ['TIMEOUT_SHUTDOWN', '5s'],
  ['TIMEOUT_TOTAL', '5h'],
  // All interfaces of the CVM: the VMM's port forward arrives on its NIC, not its loopback.
  ['ADMIN_LISTEN_ADDR', '0.0.0.0'],
  ['ADMIN_LISTEN_PORT', '8001'],
];

// The pre-launch check upstream's deploy script writes (.prelaunch.sh), in our words. Guest
// images up to v0.5.11 do not read `launch_token_hash` themselves (newer ones read only
// `requirements.launch_token_hash`, domain-separated, from user_config), so without this script
// the token would check nothing. It matters because the env is encrypted to a public key: anyone
// who can start a CVM with this app id could hand the gateway an env of their own (another
// WG_ENDPOINT or MY_URL); only the holder of the token can hand it one it accepts.
// app-compose.sh sources it from /dstack before `docker compose up` (v0.5.8 basefiles/
// app-compose.sh; HEAD os/common/rootfs/app-compose.sh under `set -euo pipefail`, hence the
// `:-` defaults). Unlike upstream's, a mismatch does not `reboot` (a silent reboot loop): it
// reports boot.error, which the VMM shows as the VM's boot_error, and stops before any container.
const PRE_LAUNCH_SCRIPT = [
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
].join('\n');

// The gateway's docker-compose file: one `gateway` service, as upstream's, with `image` pinned
// (the only value upstream substitutes on the host) and every other value either fixed here or
// a `${NAME}` the guest resolves from the decrypted env.
export function renderGatewayDockerCompose(containerImage: string = GATEWAY_CONTAINER_IMAGE): string {
  return [
    'services:',
    '  gateway:',
    `    image: ${containerImage}`,
    '    network_mode: host',
    '    privileged: true',
    '    restart: always',
    '    volumes:',
    '      - /var/run/dstack.sock:/var/run/dstack.sock',
    '      - /dstack:/dstack',
    '      - data:/data',
    '    environment:',
    ...FROM_ENV.map((name) => `      - ${name}=\${${name}}`),
    ...FIXED.map(([name, value]) => `      - ${name}=${value}`),
    'volumes:',
    '  data:',
    '',
  ].join('\n');
}

// What the gateway's manifest varies on: the container image, the env names, the launch token.
export type GatewayManifestInput = {
  containerImage?: string;
  // The names of the encrypted env's variables (their values are not measured).
  envNames: readonly string[];
  launchToken: string;
};

// sha256 of the launch token as upstream computes it (`echo -n "$APP_LAUNCH_TOKEN" | sha256sum`).
function launchTokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

// The gateway's app-compose manifest. Serialised like src/app/manifest.ts (upstream's field order,
// JSON.stringify(_, null, 2), no trailing newline), with the two fields upstream's deploy script
// adds: `pre_launch_script` where `vmm-cli.py compose --prelaunch-script` puts it, after the flags,
// and `launch_token_hash` last, where its `jq '.launch_token_hash = …'` appends it.
export function renderGatewayAppCompose(input: GatewayManifestInput): string {
  const manifest = {
    manifest_version: 2,
    name: GATEWAY_VM_NAME,
    runner: 'docker-compose',
    docker_compose_file: renderGatewayDockerCompose(input.containerImage),
    // Its keys, its RA-TLS certificate and the env's key all come from the KMS.
    kms_enabled: true,
    // The gateway registers with no gateway.
    gateway_enabled: false,
    local_key_provider_enabled: false,
    public_logs: true,
    public_sysinfo: true,
    // As upstream (`--no-instance-id`): the gateway is known by its app id alone, and an instance
    // id is only what a gateway asks of the apps that register with it.
    no_instance_id: true,
    // Upstream passes --secure-time, but its `chronyc waitsync` fails boot outright when the guest
    // has no usable time source (dstack#745, troubleshooting-kms-deployment.md "Waiting for time
    // to be synchronized"); chronyd still sets the clock in the background, and a clock set late
    // costs at most a retried ACME order, where a failed wait costs the gateway.
    secure_time: false,
    allowed_envs: [...new Set(input.envNames)].sort(),
    pre_launch_script: PRE_LAUNCH_SCRIPT,
    launch_token_hash: launchTokenHash(input.launchToken),
  };
  return JSON.stringify(manifest, null, 2);
}

// True when an app-compose manifest is the gateway CVM's: its name, and a launch token hash no
// app manifest has (an app may also be called dstack-gateway).
export function isGatewayCompose(composeFile: string): boolean {
  try {
    const manifest: unknown = JSON.parse(composeFile);
    if (typeof manifest !== 'object' || manifest === null) return false;
    return 'name' in manifest && manifest.name === GATEWAY_VM_NAME && 'launch_token_hash' in manifest && typeof manifest.launch_token_hash === 'string';
  } catch {
    return false;
  }
}
