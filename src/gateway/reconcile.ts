// One step of Tier 2 towards gateway.d (issue 14): bring the gateway CVM up and configured until it
// serves, or, once gateway.toml is gone and no app uses the gateway any more, stop it (never
// remove it: its disk keeps the ACME account and certificate for a re-enable). Every step reads
// what is there first (the VMM's VMs, the admin API's lists), so a step cut short by `kill -9` is
// simply taken again: there is no intent record to replay and nothing is created twice. A changed
// gateway.toml takes the same steps: admin settings are updated in place, and only a change to the
// CVM itself (image, size, ports, compose) upgrades it, as the same VM and app id.
import { createHash } from 'node:crypto';
import { composeHashOf } from '../app/manifest.ts';
import type { Allowlist } from '../auth/allowlist.ts';
import type { EnvEntry } from '../secrets/dotenv.ts';
import type { VmmClient } from '../vmm/client.ts';
import type { VmConfigurationInput, VmInfo } from '../vmm/messages.ts';
import type { GatewayAdmin } from './admin-client.ts';
import type { HostInfo } from './admin-messages.ts';
import { GatewayAdminError } from './errors.ts';
import { freshPatience } from './cert-patience.ts';
import { ensureCertificate, type CertMemory, type CertOriginStore } from './certificate.ts';
import type { GATEWAY_PHASES } from '../status/schema.ts';

// Everything one enable step needs, rendered from gateway.toml and the kept secrets.
export type GatewayPlan = {
  vmName: string;
  appId: string;
  manifest: string;
  env: EnvEntry[];
  vmConfig: (encryptedEnv: string) => VmConfigurationInput;
  // The ZT domain apps are named under, and the public port advertised to them.
  domain: string;
  proxyPort: number;
  acmeUrl: string;
  // ACME mode: the DNS credential the gateway's certbot uses (the token leaves only here).
  dns?: { name: string; token: () => string };
  // A client of this gateway's admin API and health endpoint.
  admin: () => GatewayAdmin;
};

// Where Tier 2 stands; `serving`: apps may be switched to it. A gateway CVM that failed to boot
// or exited brings its `bootError` ('' for none reported) and the last lines of its log; one that
// serves, the instances its admin `Status` lists (undefined when that could not be read).
export type GatewayPhase = (typeof GATEWAY_PHASES)[number];
export type GatewayOutcome = { phase: GatewayPhase; serving: boolean; reason: string; vmId?: string; bootError?: string; logTail?: string[]; hosts?: HostInfo[] };

export type GatewayStepDeps = {
  vmm: Pick<VmmClient, 'createVm' | 'updateVm' | 'startVm' | 'stopVm'>;
  allowlist: Pick<Allowlist, 'addHash' | 'setHashes' | 'removeApp' | 'setGatewayAppId'>;
  // Encrypt env entries for the gateway's app id (src/secrets/seal.ts).
  seal: (appId: string, entries: EnvEntry[]) => Promise<string>;
  // The last lines of a VM's log on the VMM (`GET /logs`); never throws.
  vmLogs: (vmId: string) => Promise<string[]>;
  // Which ACME directory the served certificate came from, kept across restarts (certificate.ts).
  certOrigin: CertOriginStore;
  // Remembered across steps: the DNS token last handed to the gateway, as a fingerprint (the
  // gateway redacts it in every reply, so it cannot be compared there), and the certificate's
  // asking pace and last problem (certificate.ts).
  memory: { dnsFingerprint?: string } & CertMemory;
};

// The gateway's VM: found by name and app id, so a VM some other tool calls dstack-gateway is
// never taken over.
export function findGatewayVm(vms: readonly VmInfo[], name: string, appId: string): VmInfo | undefined {
  const mine = vms.filter((v) => v.name === name && v.app_id === appId);
  return mine.find((v) => v.status === 'running') ?? mine[0];
}

const differs = (vm: VmInfo, cfg: VmConfigurationInput): boolean => {
  const c = vm.configuration;
  if (!c) return true;
  const ports = (list: readonly { protocol?: string; host_address?: string; host_port?: number; vm_port?: number }[]) =>
    list.map((p) => `${p.protocol}|${p.host_address}|${p.host_port}|${p.vm_port}`).sort().join(',');
  return c.compose_file !== cfg.compose_file || ports(c.ports) !== ports(cfg.ports ?? []) || c.vcpu !== cfg.vcpu || c.memory !== cfg.memory || c.disk_size !== cfg.disk_size || c.image !== cfg.image;
};

// Take one step towards a gateway that serves `plan`.
export async function stepEnable(plan: GatewayPlan, vms: readonly VmInfo[], deps: GatewayStepDeps): Promise<GatewayOutcome> {
  const hash = composeHashOf(plan.manifest);
  // Registered before CreateVm or UpdateVm, or the boot is denied (docs/dstack.md, Gateway).
  await deps.allowlist.setGatewayAppId(plan.appId);
  await deps.allowlist.addHash(plan.appId, hash);
  const vm = findGatewayVm(vms, plan.vmName, plan.appId);
  const want = plan.vmConfig('');
  if (!vm) {
    const { id } = await deps.vmm.createVm(plan.vmConfig(await deps.seal(plan.appId, plan.env)));
    return { phase: 'deploying', serving: false, reason: `created the gateway CVM ${id}`, vmId: id };
  }
  const at = { vmId: vm.id };
  if (vm.status === 'removing' || vm.status === 'stopping') return { phase: 'deploying', serving: false, reason: `the gateway CVM ${vm.id} is ${vm.status}`, ...at };
  if (differs(vm, want)) {
    // An image or size change (or a newer gateway compose): upgraded in place, same app id, so
    // its keys and disk survive. Resources change only on a stopped VM (docs/dstack.md §2.2).
    if (vm.status === 'running') {
      await deps.vmm.stopVm(vm.id);
      return { phase: 'deploying', serving: false, reason: `stopping the gateway CVM ${vm.id} to upgrade it`, ...at };
    }
    await deps.vmm.updateVm({
      id: vm.id,
      compose_file: want.compose_file,
      encrypted_env: await deps.seal(plan.appId, plan.env),
      update_ports: true,
      ports: want.ports ?? [],
      vcpu: want.vcpu,
      memory: want.memory,
      disk_size: want.disk_size,
      image: want.image,
    });
  }
  if (vm.status === 'stopped' || vm.status === 'exited' || differs(vm, want)) {
    // An exited guest (a boot error, or its process died) is read before it is started again,
    // which starts a new log; the step reports the failure, so the caller's backoff spaces the
    // attempts. The VM is never recreated: its disk holds the ACME account and certificate.
    const failure = vm.status === 'exited' ? await bootFailure(vm, deps) : undefined;
    await deps.vmm.startVm(vm.id);
    if (failure) return { ...failure, reason: `${failure.reason}; started it again` };
    return { phase: 'booting', serving: false, reason: `started the gateway CVM ${vm.id}`, ...at };
  }
  if (vm.boot_error) return bootFailure(vm, deps);
  if (vm.boot_progress !== 'done') return { phase: 'booting', serving: false, reason: `the gateway CVM ${vm.id} is booting ("${vm.boot_progress}")`, ...at };

  const admin = plan.admin();
  let hosts: HostInfo[] | undefined;
  let cert: Awaited<ReturnType<typeof ensureCertificate>>;
  try {
    await admin.health();
    await configure(plan, admin, deps);
    const { domains } = await admin.call('ListZtDomains', {});
    const status = domains.find((d) => d.config.domain === plan.domain)?.cert_status;
    cert = await ensureCertificate(plan, status, admin, { origin: deps.certOrigin, memory: deps.memory });
    if (!cert.served) return { phase: 'certificate', serving: false, reason: cert.reason, ...at };
    // Make before break: a domain gateway.toml named before (or one added by hand) is configured
    // until the new one's certificate is served, so its names keep working through a change; then
    // it goes. Its certificate stays in the gateway's store, as upstream keeps it.
    for (const other of domains) if (other.config.domain !== plan.domain) await admin.call('DeleteZtDomain', { domain: other.config.domain });
    // What it has registered, for the status of an app whose guest says it could not register.
    hosts = await admin.call('Status', {}).then((reply) => reply.hosts, () => undefined);
  } catch (err) {
    if (err instanceof GatewayAdminError && err.code === 'GATEWAY_UNREACHABLE') {
      return { phase: 'configuring', serving: false, reason: `the gateway CVM ${vm.id} booted, but its service does not answer yet (${err.message})`, ...at };
    }
    throw err;
  } finally {
    await admin.close();
  }
  // Only the hash it runs may boot as the gateway from now on.
  await deps.allowlist.setHashes(plan.appId, [hash]);
  const note = cert.served && cert.note ? `; ${cert.note}` : '';
  return { phase: 'serving', serving: true, reason: `serving *.${plan.domain} on port ${plan.proxyPort}${note}`, hosts, ...at };
}

// A gateway CVM that reported a boot error or exited: that, and the last lines of its log. The
// reason leaves the log out, so the journal says it once while the tail changes per attempt.
async function bootFailure(vm: VmInfo, deps: Pick<GatewayStepDeps, 'vmLogs'>): Promise<GatewayOutcome> {
  const what = vm.boot_error ? `failed to boot (${vm.boot_error})` : `exited (boot stage "${vm.boot_progress}", no boot error reported)`;
  return { phase: 'failed', serving: false, reason: `the gateway CVM ${vm.id} ${what}`, vmId: vm.id, bootError: vm.boot_error, logTail: await deps.vmLogs(vm.id) };
}

// Certbot settings, the DNS credential and the ZT domain, each listed first and created or
// updated only when it differs, so a repeated step creates nothing twice.
async function configure(plan: GatewayPlan, admin: GatewayAdmin, deps: GatewayStepDeps): Promise<void> {
  const certbot = await admin.call('GetCertbotConfig', {});
  if (certbot.acme_url !== plan.acmeUrl) {
    // In place: the gateway registers an account at the new directory with its next issuance
    // (certificate.ts forces one when a certificate is served), none before.
    await admin.call('SetCertbotConfig', { acme_url: plan.acmeUrl });
    deps.memory.cert = freshPatience(1);
  }
  if (plan.dns) {
    const token = plan.dns.token();
    const fingerprint = createHash('sha256').update(token, 'utf8').digest('hex');
    const { credentials, default_id } = await admin.call('ListDnsCredentials', {});
    const mine = credentials.find((c) => c.name === plan.dns?.name);
    if (!mine) {
      await admin.call('CreateDnsCredential', { name: plan.dns.name, provider_type: 'cloudflare', cf_api_token: token, set_as_default: true });
    } else if (deps.memory.dnsFingerprint !== fingerprint) {
      await admin.call('UpdateDnsCredential', { id: mine.id, cf_api_token: token });
      // A token changed in token_file (not merely unknown after a restart): an issuance that
      // failed for the old one is asked for again at once.
      if (deps.memory.dnsFingerprint !== undefined) deps.memory.cert = freshPatience(1);
    }
    deps.memory.dnsFingerprint = fingerprint;
    if (mine && default_id && default_id !== mine.id) {
      throw new GatewayAdminError('GATEWAY_REFUSED', `the gateway's default DNS credential is ${default_id}, not "${plan.dns.name}"; remove the other one in its admin API`);
    }
  }
  const { domains } = await admin.call('ListZtDomains', {});
  const zt = domains.find((d) => d.config.domain === plan.domain);
  if (!zt) await admin.call('AddZtDomain', { domain: plan.domain, port: plan.proxyPort, priority: 100 });
  else if (zt.config.port !== plan.proxyPort) await admin.call('UpdateZtDomain', { ...zt.config, port: plan.proxyPort });
}

// Take one step towards Tier 2 off: wait while apps still use the gateway, then stop its CVM and
// clear gatewayAppId and its allowlist entry.
export async function stepDisable(vmName: string, appId: string, inUse: readonly string[], vms: readonly VmInfo[], deps: Pick<GatewayStepDeps, 'vmm' | 'allowlist'>): Promise<GatewayOutcome> {
  if (inUse.length > 0) return { phase: 'draining', serving: false, reason: `waiting for ${inUse.join(', ')} to move back to direct ports` };
  const vm = findGatewayVm(vms, vmName, appId);
  if (vm && (vm.status === 'running' || vm.status === 'exited')) {
    await deps.vmm.stopVm(vm.id);
    return { phase: 'draining', serving: false, reason: `stopping the gateway CVM ${vm.id} (kept, with its certificate)`, vmId: vm.id };
  }
  await deps.allowlist.setGatewayAppId('');
  await deps.allowlist.removeApp(appId);
  return { phase: 'stopped', serving: false, reason: vm ? `the gateway CVM ${vm.id} is stopped; remove it with destroy --purge` : 'no gateway CVM', ...(vm ? { vmId: vm.id } : {}) };
}
