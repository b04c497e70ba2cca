// The status files must match the directory: one `<state_dir>/status/NAME.json` per app identity
// that has a file in apps.d, a VM, or an unreadable state record, and none for a name with none
// of these (issue 13 item 7: a file refused and then deleted left its status behind for good);
// a deployed app's status says `running` with its VM and hash; a held record's status names the
// record file; and `_supervisor.json` counts exactly the app statuses there are.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { VmInfo } from '../../src/vmm/messages.ts';
import type { Expectation, Expected } from './oracle.ts';

const STATUS_FILE = /^([a-z0-9][a-z0-9-]{0,62})\.json$/;

type AppStatusFile = { phase?: string; vm_id?: string | null; compose_hash?: string | null; last_error?: string | null };

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch {
    // Missing (not written yet, or removed meanwhile) or replaced mid-read: the next look sees it.
    return undefined;
  }
}

// The status violations (each `category: detail`) for what the oracle expects (`apps`: after
// blockedByPorts) and the VMs there are.
export async function checkStatusFiles(stateDir: string, expected: Expected, apps: ReadonlyMap<string, Expectation>, vms: readonly VmInfo[]): Promise<string[]> {
  const dir = join(stateDir, 'status');
  const names = (await readdir(dir).catch(() => [] as string[])).flatMap((f) => STATUS_FILE.exec(f)?.[1] ?? []);
  const present = new Set(names);
  const wanted = new Set([...expected.identities, ...vms.map((v) => v.name), ...expected.corrupt]);
  const violations: string[] = [];
  for (const name of wanted) if (!present.has(name)) violations.push(`status-missing: ${name} has ${expected.identities.has(name) ? 'a file' : expected.corrupt.has(name) ? 'a state record' : 'a VM'} but no status file`);
  for (const name of present) if (!wanted.has(name)) violations.push(`status-ghost: status/${name}.json is there, but ${name} has no file, no VM and no state record`);
  for (const name of present) {
    const status = await readJson<AppStatusFile>(join(dir, `${name}.json`));
    const e = apps.get(name);
    const vm = vms.find((v) => v.name === name);
    if (!status) continue;
    if (e?.kind === 'valid' && vm && (status.phase !== 'running' || status.vm_id !== vm.id || status.compose_hash !== e.hash)) {
      violations.push(`status-stale: ${name} runs VM ${vm.id} with ${e.hash.slice(0, 12)}, its status says ${status.phase} VM ${status.vm_id} hash ${status.compose_hash?.slice(0, 12)}`);
    }
    if (expected.corrupt.has(name) && !(status.last_error ?? '').includes(join('apps', `${name}.json`))) {
      violations.push(`status-record: ${name}'s state record is unreadable, but its status does not name the file (last_error ${JSON.stringify(status.last_error)})`);
    }
  }
  const summary = await readJson<{ counts?: Record<string, number> }>(join(dir, '_supervisor.json'));
  const counted = Object.values(summary?.counts ?? {}).reduce((sum, n) => sum + n, 0);
  if (summary && counted !== present.size) violations.push(`status-counts: _supervisor.json counts ${counted} apps, there are ${present.size} status files`);
  return violations;
}
