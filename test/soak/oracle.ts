// What the soak checks once the supervisor has converged, worked out from apps.d itself (not from
// the ops): every identity whose one file is a regular, root-owned, not group/world-writable,
// valid compose file runs on exactly one booted VM with exactly that content; an identity that
// is held back (invalid, refused, two files, a port two files claim) deploys nothing new and
// tears nothing down, so its VM, if any, runs some content once valid under that name; no VM
// without a file; one VM per name; the allowlist lists, per VM, exactly the hash it runs.
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { classifyEntry } from '../../src/appsdir/classify.ts';
import { buildAppSpec } from '../../src/app/spec.ts';
import type { VmInfo } from '../../src/vmm/messages.ts';

const DEFAULTS = { image: 'x', vcpu: 2, memory: 2048, disk: 20, portAddress: '127.0.0.1' };
const MAX_FILE_BYTES = 1024 * 1024;

// What an identity in apps.d should come to.
export type Expectation = { kind: 'valid'; hash: string; ports: number[] } | { kind: 'held'; why: string };

// The compose hash of `text` deployed as app `name`, or undefined when it cannot deploy.
export function hashOf(name: string, text: string): string | undefined {
  try {
    return buildAppSpec({ name, file: `${name}.yml`, text, defaults: DEFAULTS }).composeHash;
  } catch {
    return undefined;
  }
}

function portsOf(name: string, text: string): number[] {
  return buildAppSpec({ name, file: `${name}.yml`, text, defaults: DEFAULTS }).ports.map((p) => p.host_port);
}

// Every app identity in `dir` and what it should come to.
export async function expectApps(dir: string, owner: number): Promise<Map<string, Expectation>> {
  const files = new Map<string, string[]>();
  for (const entry of await readdir(dir)) {
    const c = classifyEntry(entry);
    if (c.kind === 'app') files.set(c.name, [...(files.get(c.name) ?? []), entry]);
  }
  const out = new Map<string, Expectation>();
  const claims = new Map<number, string[]>();
  for (const [name, list] of files) {
    const [file] = list;
    if (file === undefined) continue;
    if (list.length > 1) {
      out.set(name, { kind: 'held', why: `two files: ${list.join(', ')}` });
      continue;
    }
    const path = join(dir, file);
    const st = await lstat(path);
    const refusal = !st.isFile() ? 'not a regular file' : st.uid !== owner ? `owned by ${st.uid}` : st.mode & 0o022 ? `mode ${(st.mode & 0o777).toString(8)}` : st.size > MAX_FILE_BYTES ? 'too large' : undefined;
    if (refusal) {
      out.set(name, { kind: 'held', why: refusal });
      continue;
    }
    const text = await readFile(path, 'utf8');
    const hash = hashOf(name, text);
    if (hash === undefined) {
      out.set(name, { kind: 'held', why: 'invalid content' });
      continue;
    }
    const ports = portsOf(name, text);
    out.set(name, { kind: 'valid', hash, ports });
    for (const port of ports) claims.set(port, [...(claims.get(port) ?? []), name]);
  }
  for (const [port, names] of claims) {
    if (names.length > 1) for (const name of names) out.set(name, { kind: 'held', why: `port ${port} also claimed by ${names.join(', ')}` });
  }
  return out;
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');
const short = (hash: string | undefined) => (hash ?? 'none').slice(0, 12);

// A VM keeps its host ports until it is updated or removed: a valid file publishing a port another
// app's VM holds cannot deploy or upgrade until that VM lets go. A held app's VM never does, and
// apps that trade ports converge only through failed attempts and backoff, so such a file counts
// as held at a check. The last ops of a soak give every file a port never used before, so the
// final check is strict for all.
function blockedByPorts(expected: ReadonlyMap<string, Expectation>, vms: readonly VmInfo[]): Map<string, Expectation> {
  const out = new Map(expected);
  const holder = new Map<number, string>();
  for (const vm of vms) for (const p of vm.configuration?.ports ?? []) holder.set(p.host_port, vm.name);
  for (const [name, e] of expected) {
    const port = e.kind === 'valid' ? e.ports.find((p) => holder.has(p) && holder.get(p) !== name) : undefined;
    if (port !== undefined) out.set(name, { kind: 'held', why: `port ${port} is held by the VM of ${holder.get(port)}` });
  }
  return out;
}

// The invariants at quiescence; each violation is `category: detail`. `history` holds, per name,
// every hash that name's files ever held while valid.
export function checkInvariants(
  files: ReadonlyMap<string, Expectation>,
  vms: readonly VmInfo[],
  allowlist: Record<string, { composeHashes: string[] }>,
  history: ReadonlyMap<string, ReadonlySet<string>>,
  launchedCompose: (vmId: string) => string,
): string[] {
  const expected = blockedByPorts(files, vms);
  const violations: string[] = [];
  const byName = new Map<string, VmInfo[]>();
  for (const vm of vms) byName.set(vm.name, [...(byName.get(vm.name) ?? []), vm]);
  const hashOfVm = (vm: VmInfo) => (vm.configuration ? sha256(vm.configuration.compose_file) : undefined);
  for (const [name, list] of byName) {
    if (list.length > 1) violations.push(`duplicate: ${list.length} VMs named ${name}: ${list.map((v) => `${v.id} ${v.status}`).join(', ')}`);
    if (!expected.has(name)) violations.push(`orphan: VM ${name} (${list.map((v) => `${v.id} ${v.status}`).join(', ')}) has no file`);
  }
  for (const [name, e] of expected) {
    const vm = byName.get(name)?.[0];
    if (e.kind === 'valid') {
      if (!vm) violations.push(`missing: ${name} has a valid file but no VM`);
      else if (vm.status !== 'running' || vm.boot_progress !== 'done' || vm.boot_error) violations.push(`not-running: ${name} VM ${vm.id} is ${vm.status}, boot "${vm.boot_progress}" ${vm.boot_error}`);
      else if (hashOfVm(vm) !== e.hash) violations.push(`stale: ${name} runs ${short(hashOfVm(vm))}, its file says ${short(e.hash)}`);
      // The manifest can be updated while the guest still runs what it booted with.
      else if (sha256(launchedCompose(vm.id)) !== e.hash) violations.push(`stale-launch: ${name}'s manifest says ${short(e.hash)}, its guest booted ${short(sha256(launchedCompose(vm.id)))}`);
    } else if (vm && !history.get(name)?.has(hashOfVm(vm) ?? '')) {
      violations.push(`held-unknown: ${name} is held (${e.why}) and runs ${short(hashOfVm(vm))}, never a valid content of it`);
    }
  }
  const ids = new Set(vms.map((v) => v.app_id));
  // A valid file waiting for a port another app's VM holds retries its deploy, so its hashes may
  // stay listed without a VM; every other entry needs one.
  const retrying = [...files].filter(([name, e]) => e.kind === 'valid' && expected.get(name)?.kind === 'held' && !byName.has(name)).map(([name]) => name);
  for (const [id, entry] of Object.entries(allowlist)) {
    if (ids.has(id)) continue;
    if (retrying.some((name) => entry.composeHashes.every((h) => history.get(name)?.has(h)))) continue;
    violations.push(`allowlist-extra: entry ${id} (${entry.composeHashes.map(short).join(', ')}) has no VM`);
  }
  for (const vm of vms) {
    const listed = allowlist[vm.app_id]?.composeHashes;
    const runs = hashOfVm(vm) ?? '';
    const held = expected.get(vm.name)?.kind === 'held';
    if (!listed) violations.push(`allowlist-missing: VM ${vm.name} (app id ${vm.app_id}) has no allowlist entry`);
    else if (!held && (listed.length !== 1 || listed[0] !== runs)) violations.push(`allowlist-hashes: ${vm.name} lists ${listed.map(short).join(', ')}, runs ${short(runs)}`);
    else if (held && (!listed.includes(runs) || listed.some((h) => !history.get(vm.name)?.has(h)))) violations.push(`allowlist-hashes: held ${vm.name} lists ${listed.map(short).join(', ')}, runs ${short(runs)}`);
  }
  return violations;
}

// The category of a violation (what a shrunk run must reproduce).
export function categoryOf(violation: string): string {
  return violation.slice(0, violation.indexOf(':'));
}
