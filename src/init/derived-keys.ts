// The keys of each rendered file that come from supervisor.toml rather than from the template,
// and so are enforced on every init. Kept apart from the file I/O so the rule "what does the
// supervisor own in vmm.toml" reads as one list.
import type { InitSection } from './config-schema.ts';
import { renderError } from './errors.ts';
import type { Doc, EnforcedKey } from './merge.ts';
import type { Platform } from './platform.ts';

// The guest port the KMS listens on; its CVM publishes it as the KMS host port (docs/dstack.md §5.5).
export const KMS_GUEST_PORT = 8000;

// supervisor.toml `[vmm] url` as a Rocket listen endpoint: `unix:/p` stays, `http://ip:port`
// becomes `tcp:ip:port` (the VMM serves plain HTTP; TLS is not its business here).
export function vmmListenAddress(url: string): string {
  if (url.startsWith('unix:/')) return url;
  const parsed = URL.canParse(url) ? new URL(url) : undefined;
  if (parsed?.protocol !== 'http:') {
    throw renderError('vmm.toml', `[vmm] url = "${url}" cannot be a listen address; use unix:/path or http://ip:port`);
  }
  return `tcp:${parsed.hostname}:${parsed.port === '' ? '80' : parsed.port}`;
}

// vmm.toml: where it listens, where the KMS is, which ports CVMs may publish, which binaries run,
// and the platform the CVMs run on.
export function vmmEnforced(init: InitSection, listen: string, kmsPort: number, platform: Platform): EnforcedKey[] {
  return [
    { path: ['address'], value: listen },
    // The host reaches the KMS CVM through its published port; the VMM skips cert checks for it.
    { path: ['kms_url'], value: `https://127.0.0.1:${kmsPort}` },
    { path: ['run_path'], value: `${init.data_dir}/vm` },
    { path: ['image', 'path'], value: init.images_dir },
    { path: ['cvm', 'qemu_path'], value: init.qemu_path },
    // Rendered before the VMM first starts, so no restart is ever needed to learn them.
    { path: ['cvm', 'kms_urls'], value: [`https://${init.guest_host_address}:${kmsPort}`] },
    { path: ['cvm', 'cid_start'], value: init.cid_start },
    { path: ['cvm', 'cid_pool_size'], value: init.cid_pool_size },
    { path: ['cvm', 'port_mapping', 'enabled'], value: true },
    { path: ['cvm', 'port_mapping', 'address'], value: init.port_mapping_address },
    { path: ['cvm', 'port_mapping', 'range'], value: init.port_ranges.map((r) => ({ protocol: r.protocol, from: r.from, to: r.to })) },
    // Explicit, never the VMM's built-in default, which is this service's own path (docs/dstack.md §5.3).
    { path: ['supervisor', 'exe'], value: init.vmm_supervisor_bin },
    { path: ['supervisor', 'sock'], value: `${init.run_dir}/supervisor.sock` },
    { path: ['supervisor', 'pid_file'], value: `${init.run_dir}/supervisor.pid` },
    { path: ['supervisor', 'log_file'], value: `${init.run_dir}/supervisor.log` },
    { path: ['host_api', 'port'], value: init.host_api_port },
    ...platformVmmKeys(init, platform),
  ];
}

// What differs per platform in vmm.toml, as upstream's dstackup renders it (dstack-cli-core
// src/config.rs `vmm_toml`): SNP CVMs share the host directory as a virtual disk (9p does not work
// with SNP memory encryption) and bind their configuration through mrconfigid. TDX leaves
// use_mrconfigid and host_share_mode to the template, as before. Upstream keeps `[key_provider]
// enabled = true` on SNP although nothing listens there; we turn it off, because no
// gramine-sealing-key-provider runs on an SNP host.
function platformVmmKeys(init: InitSection, platform: Platform): EnforcedKey[] {
  if (platform === 'tdx') {
    return [
      { path: ['cvm', 'platform'], value: 'tdx' },
      { path: ['key_provider', 'enabled'], value: true },
      { path: ['key_provider', 'port'], value: init.key_provider_port },
    ];
  }
  return [
    { path: ['cvm', 'platform'], value: 'amd-sev-snp' },
    { path: ['cvm', 'use_mrconfigid'], value: true },
    { path: ['cvm', 'host_share_mode'], value: 'vhd' },
    { path: ['key_provider', 'enabled'], value: false },
  ];
}

// kms.toml: the single-node bootstrap (docs/dstack.md §5.4) or, with `kms_onboard_from`, no
// bootstrap domain, so the KMS waits in onboarding mode for init to onboard it (docs/dstack.md
// "KMS replicas"); the way back to auth-simple; and on SNP the local key-release gate. The KMS releases no key to an SNP guest, its own bootstrap
// included, unless `[core] sev_snp_key_release` is true (default false; upstream
// docs/amd-sev-snp.md "KMS key-release policy", and dstackup renders it true on SNP).
export function kmsEnforced(init: InitSection, platform: Platform): EnforcedKey[] {
  return [
    { path: ['rpc', 'port'], value: KMS_GUEST_PORT },
    { path: ['core', 'enforce_self_authorization'], value: false },
    { path: ['core', 'image', 'verify'], value: init.kms_verify_image },
    { path: ['core', 'auth_api', 'type'], value: 'webhook' },
    { path: ['core', 'auth_api', 'webhook', 'url'], value: `http://${init.guest_host_address}:${init.auth_port}` },
    { path: ['core', 'onboard', 'enabled'], value: true },
    { path: ['core', 'onboard', 'auto_bootstrap_domain'], value: init.kms_onboard_from === '' ? init.guest_host_address : '' },
    { path: ['core', 'onboard', 'port'], value: KMS_GUEST_PORT },
    ...(platform === 'amd-sev-snp' ? [{ path: ['core', 'sev_snp_key_release'], value: true }] : []),
  ];
}

// kms.toml defaults only SNP has: an AMD KDS mirror for the VCEK chain, empty = AMD's own
// (upstream dstackup renders it empty; an operator may point it at a mirror and keep it).
export function kmsPlatformDefaults(platform: Platform): Doc {
  return platform === 'amd-sev-snp' ? { core: { amd_kds_base_url: '' } } : {};
}

// auth-config.json: the image pin and the TCB policy. `apps` is never named here: it belongs to
// the allowlist code and the operator, and the merge keeps it as it is.
export function authConfigEnforced(init: InitSection, pin: string, existing: Doc | undefined): EnforcedKey[] {
  const listed = existing?.['osImages'];
  const images = Array.isArray(listed) ? listed : [];
  // Older pins stay: CVMs still running the previous image must pass auth when they reboot.
  const pinned = images.some((i) => typeof i === 'string' && normalizePin(i) === pin);
  return [
    { path: ['osImages'], value: pinned ? images : [...images, pin] },
    { path: ['allowedTcbStatuses'], value: init.allowed_tcb_statuses },
    { path: ['allowedAdvisoryIds'], value: init.allowed_advisory_ids },
    { path: ['kms', 'allowAnyDevice'], value: init.kms_allow_any_device },
  ];
}

function normalizePin(value: string): string {
  const lower = value.trim().toLowerCase();
  return lower.startsWith('0x') ? lower.slice(2) : lower;
}
