// Tier 2 assembled from supervisor.toml and the service's edges: where gateway.toml is, how the
// gateway CVM is rendered and sealed, how its admin API is reached, where its state is kept, and a
// watch on gateway.d so a dropped file is acted on at once rather than at the next resync.
import { watch, type FSWatcher } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import * as z from 'zod';
import type { Allowlist } from '../auth/allowlist.ts';
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import { writeFileAtomic } from '../fsx/atomic.ts';
import type { Logger } from '../log/logger.ts';
import type { EnvEntry } from '../secrets/dotenv.ts';
import { writeGatewayStatus } from '../status/store.ts';
import type { VmmClient } from '../vmm/client.ts';
import { GATEWAY_VM_NAME } from './compose.ts';
import { loadGatewayConfig } from './config.ts';
import { checkWildcardDns, createDnsMonitor, createResolveA } from './dns-check.ts';
import { gatewayAdminUrl, gatewayUrls, gatewayVmConfig, renderGatewayCvm } from './cvm.ts';
import { loadOrCreateGatewaySecrets, readGatewaySecrets } from './secrets.ts';
import { createTier2, type Tier2, type TierSettings } from './tier2.ts';

// Let's Encrypt's staging directory; an empty acme_url is the gateway's default, production.
const LE_STAGING = 'https://acme-staging-v02.api.letsencrypt.org/directory';

// The name the supervisor gives the DNS credential it hands the gateway.
const DNS_CREDENTIAL_NAME = 'dstack-supervisor';

// How much of a failed gateway CVM's log the status shows.
const GATEWAY_LOG_LINES = 20;

const TierSettingsSchema = z.object({ apps: z.enum(['opt-in', 'all']), baseDomain: z.string(), proxyPort: z.number().int(), urls: z.array(z.string()) });

// `<state_dir>/gateway/certificate.json`: the served certificate and the ACME directory it came from.
const CertOriginSchema = z.object({ domain: z.string(), issued_at: z.number().int().min(0), acme_url: z.string() });

// The kept JSON file `file` parsed by `schema`; missing or unreadable is nothing kept.
async function readKept<T>(file: string, schema: z.ZodType<T>): Promise<T | undefined> {
  try {
    return schema.parse(JSON.parse(await readFile(file, 'utf8')));
  } catch {
    return undefined;
  }
}

export type Tier2Edges = {
  config: Config;
  log: Logger;
  clock: Clock;
  vmm: VmmClient;
  allowlist: Allowlist;
  // The guest image apps get ([cvm] image '' means this one).
  image: string;
  seal: (app: string, appId: string, entries: EnvEntry[]) => Promise<string>;
  // Apps with a valid file, whether each asks for the gateway, and whether it is mid-operation.
  wanted: () => Array<{ name: string; wanted: boolean; busy: boolean }>;
  changed: () => void;
  timing: { pollMs: number };
};

export type Tier2Service = Tier2 & {
  // Begin: the first pass now, then on gateway.d events and timers. Only once the apps' first
  // pass is done, since a Tier 2 pass reads their verdicts.
  start: () => void;
  close: () => Promise<void>;
};

// This host's IPv4 addresses other than loopback: where `*.<domain>` should point when
// gateway.toml sets no public_ip.
function hostAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).filter((a) => a.family === 'IPv4' && !a.internal).map((a) => a.address));
}

export function createTier2Service(edges: Tier2Edges): Tier2Service {
  const { config } = edges;
  const file = join(config.gateway_dir, 'gateway.toml');
  const settingsFile = join(config.state_dir, 'gateway', 'enabled.json');
  const certFile = join(config.state_dir, 'gateway', 'certificate.json');
  const guestHost = config.init.guest_host_address;
  const servers = config.gateway.dns_servers;
  let resolveA: ReturnType<typeof createResolveA> | undefined;
  // Checked again at every resync, so a record added (or fixed) clears the warning.
  const dns = createDnsMonitor({
    check: (target) => checkWildcardDns(target, { resolve: (name) => (resolveA ??= createResolveA(servers))(name), servers, hostAddresses }),
    clock: edges.clock,
    intervalMs: config.apps.resync_s * 1000,
    log: edges.log,
  });
  const tier2 = createTier2({
    load: () => loadGatewayConfig(file, { owner: config.apps.owner }),
    async plan(load) {
      const secrets = await loadOrCreateGatewaySecrets(config.state_dir);
      // undici comes with the admin client: loaded once Tier 2 is on, not on every host.
      const { createGatewayAdmin } = await import('./admin-client.ts');
      const { appCompose, env } = renderGatewayCvm({ config: load.config, secrets, guestHost });
      const image = load.config.cvm.image || edges.image;
      const token = load.token;
      return {
        vmName: GATEWAY_VM_NAME,
        appId: secrets.appId,
        manifest: appCompose,
        env,
        vmConfig: (encryptedEnv) => gatewayVmConfig({ config: load.config, secrets, image, appCompose, encryptedEnv, kmsUrls: config.apps.kms_urls }),
        domain: load.baseDomain,
        proxyPort: load.config.proxy_port,
        acmeUrl: load.config.certificate.staging ? LE_STAGING : '',
        ...(token ? { dns: { name: DNS_CREDENTIAL_NAME, token: () => token.reveal() } } : {}),
        gatewayUrls: gatewayUrls(load.config, guestHost),
        admin: () => createGatewayAdmin({ adminUrl: gatewayAdminUrl(load.config), rpcUrl: `https://127.0.0.1:${load.config.rpc_port}`, token: secrets.adminApiToken() }),
      };
    },
    knownAppId: async () => (await readGatewaySecrets(config.state_dir))?.appId,
    vmName: GATEWAY_VM_NAME,
    remember: async (settings: TierSettings | undefined) => {
      if (settings === undefined) await rm(settingsFile, { force: true });
      else await writeFileAtomic(settingsFile, `${JSON.stringify(settings, null, 2)}\n`, { mode: 0o600 });
    },
    // Missing or unreadable: nothing remembered, as before the first enable.
    recall: () => readKept(settingsFile, TierSettingsSchema),
    listVms: async () => (await edges.vmm.status({})).vms,
    wanted: edges.wanted,
    step: {
      vmm: edges.vmm,
      allowlist: edges.allowlist,
      // Kept beside the secrets and, like them, through a disable: the gateway CVM's disk keeps
      // the certificate it describes.
      certOrigin: {
        read: async () => {
          const kept = await readKept(certFile, CertOriginSchema);
          return kept && { domain: kept.domain, issuedAt: kept.issued_at, acmeUrl: kept.acme_url };
        },
        write: (origin) => writeFileAtomic(certFile, `${JSON.stringify({ domain: origin.domain, issued_at: origin.issuedAt, acme_url: origin.acmeUrl }, null, 2)}\n`, { mode: 0o600 }),
      },
      seal: (appId, entries) => edges.seal('gateway', appId, entries),
      // undici again, so loaded with the first failure to read, not at start.
      vmLogs: async (vmId) => (await import('../vmm/vm-logs.ts')).readVmLogTail(config.vmm.url, config.vmm.token_file || undefined, vmId, GATEWAY_LOG_LINES),
    },
    dns: (target) => dns.observe(target),
    changed: edges.changed,
    writeStatus: (s) =>
      writeGatewayStatus(config.state_dir, {
        phase: s.phase,
        serving: s.serving,
        reason: s.reason,
        vm_id: s.vmId ?? null,
        domain: s.domain,
        switching: s.switching,
        boot_error: s.logTail === undefined ? null : (s.bootError ?? ''),
        log_tail: s.logTail ?? [],
        dns: s.dns,
        updated_at: new Date(edges.clock.now()).toISOString(),
      }),
    log: edges.log,
    clock: edges.clock,
    timing: { pollMs: edges.timing.pollMs, resyncMs: config.apps.resync_s * 1000, deleteConfirmMs: config.apps.delete_confirm_s * 1000, backoffMaxMs: config.apps.backoff_max_s * 1000 },
  });
  let watcher: FSWatcher | undefined;
  return {
    ...tier2,
    start() {
      // A hint only, like apps.d's watch: the resync reads gateway.toml anyway, so a directory
      // that does not exist yet (or cannot be watched) costs promptness, not correctness.
      try {
        watcher = watch(config.gateway_dir, () => tier2.poke());
        watcher.on('error', () => watcher?.close());
      } catch {
        watcher = undefined;
      }
      tier2.poke();
    },
    async close() {
      watcher?.close();
      await tier2.stop();
    },
  };
}
