// The app-compose manifest: the JSON document the VMM stores, the CVM measures, and whose sha256 is
// the compose hash the KMS allowlist holds. Built byte-for-byte as upstream `dstack deploy` builds
// it (dstack-cli-core compose.rs + docs/dstack.md §3), so the same compose file gets the same app id
// whichever tool deployed it.
import { createHash } from 'node:crypto';

// What varies between apps; every other field is fixed for the direct-port single-node flow.
export type ManifestInput = {
  name: string;
  composeText: string;
  kms: boolean;
  gateway: boolean;
  publicLogs: boolean;
  publicSysinfo: boolean;
  allowedEnvs: readonly string[];
};

// Render the manifest text. Field order is upstream's `json!` order (serde_json keeps insertion
// order: dstack's Cargo.lock builds serde_json with indexmap, i.e. `preserve_order`).
// JSON.stringify(v, null, 2) writes exactly what serde_json's PrettyFormatter does for these
// values: 2-space indent, `": "`, `[]` for an empty array, no trailing newline; strings keep
// non-ASCII and `/` raw and escape only `"` `\` and U+0000–U+001F (\b \f \n \r \t, else \u00xx in
// lowercase hex). The one divergence, lone surrogates, cannot occur: parseCompose rejects them.
export function renderManifest(input: ManifestInput): string {
  const manifest = {
    manifest_version: 2,
    name: input.name,
    runner: 'docker-compose',
    docker_compose_file: input.composeText,
    kms_enabled: input.kms,
    gateway_enabled: input.gateway,
    local_key_provider_enabled: false,
    public_logs: input.publicLogs,
    public_sysinfo: input.publicSysinfo,
    no_instance_id: false,
    // The strict time wait reboot-loops when chrony has no source (dstack#745); upstream sets false.
    secure_time: false,
    allowed_envs: [...new Set(input.allowedEnvs)].sort(),
  };
  return JSON.stringify(manifest, null, 2);
}

// sha256 of the manifest's UTF-8 bytes, lowercase hex: what GetComposeHash returns for it.
export function composeHashOf(manifest: string): string {
  return createHash('sha256').update(manifest, 'utf8').digest('hex');
}

// The app id the VMM derives when none is given: the first 40 hex digits of the compose hash.
export function appIdOf(composeHash: string): string {
  return composeHash.slice(0, 40);
}
