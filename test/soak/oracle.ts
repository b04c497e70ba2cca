// What the soak expects once the supervisor has converged, worked out from apps.d and the state
// directory themselves (not from the ops) by rules written here, not imported from src/:
// - an app is a file directly in apps.d named NAME.yaml or NAME.yml, NAME matching
//   ^[a-z0-9][a-z0-9-]{0,62}$ (docs/apps-dir.md rule 1; every editor temp name fails that pattern);
// - it deploys when it is the only file of its name, a regular file with one link (issue 13 item
//   6), owned by the owner, not group/world-writable, at most 1 MiB, with deployable content
//   (manifest.ts), NAME.env absent or a regular file of the owner with mode 0600/0400 that parses,
//   its state record readable (item 2), and its port claimed by no other such file;
// - anything else is held: nothing new deployed, nothing torn down, its VM (if any) runs some
//   content once valid under that name.
// Every deployable identity runs on exactly one booted VM with exactly that manifest and env; no VM
// without a file (unless its record is held); the allowlist lists, per VM, the hashes it may boot,
// and keeps what was added by hand for apps that are not ours.
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { VmInfo } from '../../src/vmm/messages.ts';
import { composeHashOf, deployablePort, parseEnvText, sha256, type EnvVar } from './manifest.ts';

const APP_FILE = /^([a-z0-9][a-z0-9-]{0,62})\.ya?ml$/;
const MAX_FILE_BYTES = 1024 * 1024;
const ENV_MODES = new Set([0o600, 0o400]);

// What an identity in apps.d should come to. `waiting`: held only because of a port.
export type Expectation =
  | { kind: 'valid'; hash: string; port: number; text: string; env: EnvVar[] }
  | { kind: 'held'; why: string; waiting?: boolean };

// What the directories say: per identity its expectation; every name with an app file (any
// state) and every name whose state record is unreadable.
export type Expected = { apps: Map<string, Expectation>; identities: Set<string>; corrupt: Set<string> };

// Everything an identity's files ever held: every compose text written, every NAME.env key set.
export type History = { texts: Map<string, Set<string>>; envKeys: Map<string, Set<string>> };

type Stat = { isFile(): boolean; uid: number; mode: number; size: number; nlink: number };

// Why a compose candidate is refused by its metadata, or undefined.
export function refusalOf(st: Stat, owner: number): string | undefined {
  if (!st.isFile()) return 'not a regular file';
  if (st.nlink > 1) return `a hard link (${st.nlink} links)`;
  if (st.uid !== owner) return `owned by ${st.uid}`;
  if (st.mode & 0o022) return `mode ${(st.mode & 0o777).toString(8)}`;
  return st.size > MAX_FILE_BYTES ? 'too large' : undefined;
}

// Whether a state record's text is one this version reads: JSON of format version 1.
export function recordReadable(text: string): boolean {
  try {
    return (JSON.parse(text) as { version?: unknown }).version === 1;
  } catch {
    return false;
  }
}

const missing = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT';

// NAME.env's variables, [] without one, or why it is refused.
async function envOf(dir: string, name: string, owner: number): Promise<EnvVar[] | string> {
  const path = join(dir, `${name}.env`);
  const st = await lstat(path).catch((err: unknown) => (missing(err) ? undefined : Promise.reject(err)));
  if (!st) return [];
  if (!st.isFile() || st.uid !== owner || !ENV_MODES.has(st.mode & 0o7777)) return `${name}.env refused (mode ${(st.mode & 0o7777).toString(8)}, uid ${st.uid})`;
  return parseEnvText(await readFile(path, 'utf8')) ?? `${name}.env does not parse`;
}

async function corruptRecords(stateDir: string): Promise<Set<string>> {
  const dir = join(stateDir, 'apps');
  const files = await readdir(dir).catch((err: unknown) => (missing(err) ? [] : Promise.reject(err)));
  const out = new Set<string>();
  for (const file of files) {
    const name = /^(.+)\.json$/.exec(file)?.[1];
    if (name === undefined) continue;
    const text = await readFile(join(dir, file), 'utf8').catch((err: unknown) => (missing(err) ? undefined : Promise.reject(err)));
    if (text !== undefined && !recordReadable(text)) out.add(name);
  }
  return out;
}

// Read apps.d and the state records and say what each identity should come to.
export async function expectApps(dir: string, stateDir: string, owner: number): Promise<Expected> {
  const files = new Map<string, string[]>();
  for (const entry of await readdir(dir)) {
    const name = APP_FILE.exec(entry)?.[1];
    if (name !== undefined) files.set(name, [...(files.get(name) ?? []), entry]);
  }
  const corrupt = await corruptRecords(stateDir);
  const apps = new Map<string, Expectation>();
  for (const name of corrupt) apps.set(name, { kind: 'held', why: 'its state record is unreadable' });
  const claims = new Map<number, string[]>();
  for (const [name, list] of files) {
    if (corrupt.has(name)) continue;
    if (list.length > 1) {
      apps.set(name, { kind: 'held', why: `two files: ${list.join(', ')}` });
      continue;
    }
    const path = join(dir, list[0] as string);
    const refusal = refusalOf(await lstat(path), owner);
    const env = refusal ? refusal : await envOf(dir, name, owner);
    if (typeof env === 'string') {
      apps.set(name, { kind: 'held', why: env });
      continue;
    }
    const text = await readFile(path, 'utf8');
    const port = deployablePort(text);
    if (port === undefined) {
      apps.set(name, { kind: 'held', why: 'not deployable content' });
      continue;
    }
    apps.set(name, { kind: 'valid', hash: composeHashOf(name, text, env.map((v) => v.key)), port, text, env });
    claims.set(port, [...(claims.get(port) ?? []), name]);
  }
  for (const [port, names] of claims) {
    if (names.length > 1) for (const name of names) apps.set(name, { kind: 'held', why: `port ${port} also claimed by ${names.join(', ')}`, waiting: true });
  }
  return { apps, identities: new Set(files.keys()), corrupt };
}

// Every compose hash identity `name` may ever have run: each text it held, with each env key set.
export function hashesOf(history: History, name: string): Set<string> {
  const keySets = [...(history.envKeys.get(name) ?? []), ''];
  const out = new Set<string>();
  for (const text of history.texts.get(name) ?? []) {
    for (const keys of keySets) out.add(composeHashOf(name, text, keys === '' ? [] : keys.split(',')));
  }
  return out;
}

const short = (hash: string | undefined) => (hash ?? 'none').slice(0, 12);

// A VM keeps its host ports until it is updated or removed: a valid file publishing a port another
// app's VM holds cannot deploy until that VM lets go. A held app's VM never does, and apps that
// trade ports converge only through failed attempts and backoff, so such a file counts as held
// (waiting) at a check. The last ops give every file a port never used before, so the final
// check is strict for all.
export function blockedByPorts(expected: ReadonlyMap<string, Expectation>, vms: readonly VmInfo[]): Map<string, Expectation> {
  const out = new Map(expected);
  const holder = new Map<number, string>();
  for (const vm of vms) for (const p of vm.configuration?.ports ?? []) holder.set(p.host_port, vm.name);
  for (const [name, e] of expected) {
    const held = e.kind === 'valid' && holder.has(e.port) && holder.get(e.port) !== name;
    if (held) out.set(name, { kind: 'held', why: `port ${e.port} is held by the VM of ${holder.get(e.port)}`, waiting: true });
  }
  return out;
}

// What a check looks at besides the directories.
export type Observed = {
  vms: readonly VmInfo[];
  allowlist: Record<string, { composeHashes: string[] }>;
  // Entries added by hand for apps that are not the supervisor's, as they must still be.
  foreign: ReadonlyMap<string, unknown>;
  history: History;
  // What the guest of a VM booted: its manifest text and its env (opened with the app's key).
  launched: (vm: VmInfo) => { compose: string; env: EnvVar[] | string };
};

const describeEnv = (env: EnvVar[] | string) => (typeof env === 'string' ? env : `${env.map((v) => v.key).join(',') || 'none'} #${sha256(JSON.stringify(env)).slice(0, 8)}`);

// The end-state violations (each `category: detail`), and how many deployable apps were checked
// against the oracle's own manifest hash and matched.
export function checkInvariants(expected: Expected, seen: Observed): { violations: string[]; crossChecked: number } {
  const apps = blockedByPorts(expected.apps, seen.vms);
  const { vms, allowlist, history } = seen;
  const violations: string[] = [];
  let crossChecked = 0;
  const byName = new Map<string, VmInfo[]>();
  for (const vm of vms) byName.set(vm.name, [...(byName.get(vm.name) ?? []), vm]);
  const manifestHash = (vm: VmInfo) => (vm.configuration ? sha256(vm.configuration.compose_file) : undefined);
  for (const [name, list] of byName) {
    if (list.length > 1) violations.push(`duplicate: ${list.length} VMs named ${name}: ${list.map((v) => `${v.id} ${v.status}`).join(', ')}`);
    if (!apps.has(name)) violations.push(`orphan: VM ${name} (${list.map((v) => `${v.id} ${v.status}`).join(', ')}) has no file`);
  }
  for (const [name, e] of apps) {
    const vm = byName.get(name)?.[0];
    if (e.kind === 'held') {
      const runs = vm && manifestHash(vm);
      if (runs !== undefined && !hashesOf(history, name).has(runs)) violations.push(`held-unknown: ${name} is held (${e.why}) and runs ${short(runs)}, never a valid content of it`);
      // A held file keeps what it has running: a VM that went down is started again, unless the
      // app's record cannot be read (then nothing is done for it). Not converged until then, so
      // that start does not land in the quiet window as a loop (seed 13101). A valid file waiting
      // for a port is not held by the supervisor: its upgrade is what waits (seed 14202).
      if (vm && !e.waiting && (vm.status === 'exited' || vm.status === 'stopped') && !expected.corrupt.has(name)) violations.push(`held-down: ${name} is held (${e.why}) and its VM ${vm.id} is ${vm.status}`);
      continue;
    }
    if (!vm) {
      violations.push(`missing: ${name} has a valid file but no VM`);
      continue;
    }
    const manifest = vm.configuration?.compose_file ?? '';
    const launched = seen.launched(vm);
    const parsed = JSON.parse(manifest || '{}') as { docker_compose_file?: string; allowed_envs?: string[] };
    const sameInputs = parsed.docker_compose_file === e.text && (parsed.allowed_envs ?? []).join(',') === e.env.map((v) => v.key).join(',');
    if (vm.status !== 'running' || vm.boot_progress !== 'done' || vm.boot_error) violations.push(`not-running: ${name} VM ${vm.id} is ${vm.status}, boot "${vm.boot_progress}" ${vm.boot_error}`);
    else if (sha256(manifest) !== e.hash && sameInputs) violations.push(`oracle-mismatch: ${name}: the supervisor's manifest of the same file and env names hashes to ${short(sha256(manifest))}, the oracle's to ${short(e.hash)}`);
    else if (sha256(manifest) !== e.hash) violations.push(`stale: ${name} runs ${short(sha256(manifest))}, its file says ${short(e.hash)}`);
    // The manifest can be updated while the guest still runs what it booted with.
    else if (sha256(launched.compose) !== e.hash) violations.push(`stale-launch: ${name}'s manifest says ${short(e.hash)}, its guest booted ${short(sha256(launched.compose))}`);
    else if (describeEnv(launched.env) !== describeEnv(e.env)) violations.push(`stale-env: ${name}'s guest booted with env ${describeEnv(launched.env)}, ${name}.env says ${describeEnv(e.env)}`);
    else crossChecked += 1;
  }
  const ids = new Set(vms.map((v) => v.app_id));
  // A valid file waiting for a port another app's VM holds retries its deploy, so its hashes may
  // stay listed without a VM; every other entry needs one, or must be one added by hand.
  const retrying = [...expected.apps].filter(([name, e]) => e.kind === 'valid' && apps.get(name)?.kind === 'held' && !byName.has(name)).map(([name]) => name);
  for (const [id, entry] of Object.entries(allowlist)) {
    if (ids.has(id) || seen.foreign.has(id)) continue;
    if (retrying.some((name) => entry.composeHashes.every((h) => hashesOf(history, name).has(h)))) continue;
    // Nothing is pruned for an app whose record cannot be read (seed 9101: its VM was removed
    // before the record went bad, and the entry of its hashes stays until the record is back).
    if ([...expected.corrupt].some((name) => entry.composeHashes.every((h) => hashesOf(history, name).has(h)))) continue;
    violations.push(`allowlist-extra: entry ${id} (${entry.composeHashes.map(short).join(', ')}) has no VM`);
  }
  for (const [id, entry] of seen.foreign) {
    if (JSON.stringify(allowlist[id]) !== JSON.stringify(entry)) violations.push(`foreign-lost: the entry ${id} added by hand is ${allowlist[id] ? `now ${JSON.stringify(allowlist[id])}` : 'gone'}`);
  }
  for (const vm of vms) {
    // While its record cannot be read, nothing is done for the app (issue 13 item 2): not even its
    // allowlist entry is repaired, since which VM and hashes are its own is what the record says.
    if (expected.corrupt.has(vm.name)) continue;
    const listed = allowlist[vm.app_id]?.composeHashes;
    const runs = manifestHash(vm) ?? '';
    const held = apps.get(vm.name)?.kind === 'held';
    if (!listed) violations.push(`allowlist-missing: VM ${vm.name} (app id ${vm.app_id}) has no allowlist entry`);
    else if (!held && (listed.length !== 1 || listed[0] !== runs)) violations.push(`allowlist-hashes: ${vm.name} lists ${listed.map(short).join(', ')}, runs ${short(runs)}`);
    else if (held && (!listed.includes(runs) || listed.some((h) => !hashesOf(history, vm.name).has(h)))) violations.push(`allowlist-hashes: held ${vm.name} lists ${listed.map(short).join(', ')}, runs ${short(runs)}`);
  }
  return { violations, crossChecked };
}

// The category of a violation (what a shrunk run must reproduce).
export function categoryOf(violation: string): string {
  return violation.slice(0, violation.indexOf(':'));
}
