// The app-compose manifest: the JSON document the VMM stores, the CVM measures, and whose sha256 is
// the compose hash the KMS allowlist holds. Built byte for byte as upstream's `dstack deploy` builds
// it for the same inputs (dstack-cli-core compose.rs `build_app_compose_with_runtime_and_volumes`,
// docs/dstack.md §3), so a compose file deployed by either tool gets the same compose hash and app
// id, and the supervisor adopts the VM the other made (issue 16).
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

// A manifest with its compose hash.
export type ManifestForm = { manifest: string; composeHash: string };

// The fields of upstream's `json!` literal, in its order (dstack's Cargo.lock builds serde_json with
// indexmap, i.e. `preserve_order`, so a Map keeps insertion order). Upstream writes gateway_enabled
// false and public_logs/public_sysinfo true always; `x-dstack` sets them here, in the same places.
function fixedFields(input: ManifestInput) {
  return {
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
  };
}

const sortedEnvs = (input: ManifestInput) => [...new Set(input.allowedEnvs)].sort();

// JSON.stringify(v, null, 2) writes exactly what serde_json's PrettyFormatter (`format!("{:#}")`)
// does for these values: 2-space indent, `": "`, `[]` for an empty array, no trailing newline;
// strings keep non-ASCII and `/` raw and escape only `"` `\` and U+0000–U+001F (\b \f \n \r \t,
// else \u00xx in lowercase hex). The one divergence, lone surrogates, cannot occur: parseCompose
// rejects them.
const serialise = (fields: object) => JSON.stringify(fields, null, 2);

// Render the manifest text. `allowed_envs` (NAME.env's names, sorted) is appended after
// `secure_time` only when there are names: upstream's `dstack deploy` has no env option and never
// writes the key, and adds its own optional keys (`snapshotter`, `verity_volumes`) the same way,
// after the literal and only when set. The guest reads a missing `allowed_envs` as [] (dstack-types
// AppCompose, `#[serde(default)]`).
export function renderManifest(input: ManifestInput): string {
  const envs = sortedEnvs(input);
  return serialise(envs.length === 0 ? fixedFields(input) : { ...fixedFields(input), allowed_envs: envs });
}

// The manifest releases before issue 16 wrote for the same input, when it differs from
// renderManifest's: `"allowed_envs": []` for an app without env names (with names the two agree).
// A VM that runs it is up to date until its content changes (README "Decisions", upgrading the
// package), so a package upgrade restarts no app for a change of bytes alone.
export function renderEarlierManifest(input: ManifestInput): string | undefined {
  return sortedEnvs(input).length === 0 ? serialise({ ...fixedFields(input), allowed_envs: [] }) : undefined;
}

// sha256 of the manifest's UTF-8 bytes, lowercase hex: what GetComposeHash returns for it.
export function composeHashOf(manifest: string): string {
  return createHash('sha256').update(manifest, 'utf8').digest('hex');
}

// The app id the VMM derives when none is given: the first 40 hex digits of the compose hash.
export function appIdOf(composeHash: string): string {
  return composeHash.slice(0, 40);
}
