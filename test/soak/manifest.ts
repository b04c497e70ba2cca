// The oracle's own reading of the files the soak writes, independent of src/: which compose texts
// deploy, what a NAME.env sets, and the app-compose manifest the supervisor must build from them,
// so a bug shared by the supervisor's builder and its expectation cannot hide. Written from
// docs/dstack.md §3 (what `dstack deploy` puts in the manifest, pretty-printed JSON, hashed as sent)
// and the README's decisions (NAME.env's names become `allowed_envs`); it knows only the grammar
// apply.ts writes, nothing of compose in general.
import { createHash } from 'node:crypto';

// One variable of NAME.env.
export type EnvVar = { key: string; value: string };

// The one deployable shape apply.ts writes (test/helpers/harness.ts composeText): a comment, one
// nginx service, one published port. Any other text is not deployable.
const DEPLOYABLE = /^# [^\n]*\nservices:\n {2}web:\n {4}image: nginx:1\.27\n {4}ports:\n {6}- "(\d{1,5}):80"\n$/;

// The host port of a deployable compose text, or undefined when the text cannot deploy.
export function deployablePort(text: string): number | undefined {
  const match = DEPLOYABLE.exec(text);
  return match ? Number(match[1]) : undefined;
}

// The variables of an env file as apply.ts writes it (`KEY=value` lines), sorted by key; undefined
// for anything else.
export function parseEnvText(text: string): EnvVar[] | undefined {
  const vars: EnvVar[] = [];
  for (const line of text.split('\n').filter((l) => l !== '')) {
    const match = /^([A-Z_][A-Z0-9_]*)=([A-Za-z0-9_.-]*)$/.exec(line);
    if (!match || vars.some((v) => v.key === match[1])) return undefined;
    vars.push({ key: match[1] as string, value: match[2] as string });
  }
  return vars.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

// The manifest of app `name` deployed from `text` with NAME.env's `envKeys`: upstream's field
// order, KMS on, gateway off, logs and sysinfo public, secure_time off (dstack#745); the env names
// sorted in an `allowed_envs` after them only when there are any (upstream's `dstack deploy` never
// writes the key, issue 16); two-space indented JSON with no trailing newline.
export function manifestOf(name: string, text: string, envKeys: readonly string[]): string {
  const names = [...new Set(envKeys)].sort();
  const fields = {
    manifest_version: 2,
    name,
    runner: 'docker-compose',
    docker_compose_file: text,
    kms_enabled: true,
    gateway_enabled: false,
    local_key_provider_enabled: false,
    public_logs: true,
    public_sysinfo: true,
    no_instance_id: false,
    secure_time: false,
  };
  return JSON.stringify(names.length === 0 ? fields : { ...fields, allowed_envs: names }, null, 2);
}

// sha256 hex of a string's UTF-8 bytes.
export const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

// The compose hash the allowlist and the VM must carry for that app.
export function composeHashOf(name: string, text: string, envKeys: readonly string[]): string {
  return sha256(manifestOf(name, text, envKeys));
}
