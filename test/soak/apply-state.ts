// Hand edits of the host's state, as an operator (or upstream's installer) makes them: entries of
// auth-config.json added, dropped or changed, and a per-app state record made unreadable or moved
// aside. Each says which app it touched, so the call-log invariants can allow for it.
import { readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { acquireLock, lockPathFor } from '../../src/auth/lock.ts';
import type { VmInfo } from '../../src/vmm/messages.ts';
import { sha256 } from './manifest.ts';
import { FOREIGN_IDS, GHOSTS, NAMES, type AuthEdit, type RecordEdit } from './ops.ts';
import { recordReadable } from './oracle.ts';

type AuthFile = { apps: Record<string, { composeHashes: string[] } & Record<string, unknown>> } & Record<string, unknown>;

// What an edit did: the managed apps whose entry it changed, and the foreign entries it left
// (an entry, or undefined for one it removed).
export type AuthEditResult = { touched: string[]; foreign: Map<string, unknown> };

// A foreign app's entry as an operator writes it, with a key of their own the supervisor must keep.
function foreignEntry(id: string): Record<string, unknown> {
  return { composeHashes: [sha256(`foreign ${id}`)], devices: [], allowAnyDevice: false, note: 'added by hand' };
}

// Edit auth-config.json at `path` under the allowlist lock (the flock convention upstream's CLI
// and the supervisor share, so the edit is not lost to a concurrent write) and replace it in one
// rename, as an editor that saves atomically does. `vms` name the managed entries.
export async function editAuthConfig(path: string, edit: AuthEdit, pick: number, vms: readonly VmInfo[]): Promise<AuthEditResult> {
  const lock = await acquireLock(lockPathFor(path));
  try {
    const config = JSON.parse(await readFile(path, 'utf8')) as AuthFile;
    const result: AuthEditResult = { touched: [], foreign: new Map() };
    const managed = [...vms].sort((a, b) => (a.name < b.name ? -1 : 1)).filter((vm) => config.apps[vm.app_id] !== undefined);
    const target = managed[pick % Math.max(1, managed.length)];
    const present = FOREIGN_IDS.filter((id) => config.apps[id] !== undefined);
    const absent = FOREIGN_IDS.filter((id) => config.apps[id] === undefined);
    switch (edit) {
      case 'add-foreign': {
        const id = absent[pick % Math.max(1, absent.length)];
        if (id === undefined) return result;
        config.apps[id] = foreignEntry(id) as AuthFile['apps'][string];
        result.foreign.set(id, config.apps[id]);
        break;
      }
      case 'remove-foreign': {
        const id = present[pick % Math.max(1, present.length)];
        if (id === undefined) return result;
        delete config.apps[id];
        result.foreign.set(id, undefined);
        break;
      }
      case 'drop':
      case 'tamper': {
        if (!target) return result;
        const bogus = sha256(`tampered ${pick}`);
        const entry = config.apps[target.app_id] as AuthFile['apps'][string];
        if (edit === 'drop') delete config.apps[target.app_id];
        else entry.composeHashes = pick % 2 === 0 ? [bogus] : [...entry.composeHashes, bogus];
        result.touched.push(target.name);
        break;
      }
      case 'reinstall':
        // `dstackup install` writes the file afresh: no app entries at all, ours or anyone's. It
        // touches every app: one whose CreateVm is still to come loses the hash registered ahead.
        config.apps = {};
        result.touched.push(...new Set([...NAMES, ...GHOSTS, ...vms.map((vm) => vm.name)]));
        for (const id of present) result.foreign.set(id, undefined);
        break;
    }
    const temp = join(dirname(path), 'auth-config.json.soak-edit');
    await writeFile(temp, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o644 });
    await rename(temp, path);
    return result;
  } finally {
    await lock.release();
  }
}

// Corrupt app `name`'s state record (garbage bytes, or a record of a newer format version), or
// move a corrupt one aside as its status tells the operator to. Returns whether it did anything:
// an app without a record (never deployed, or already forgotten) is left alone, as is a readable
// record asked to be moved aside.
export async function editRecord(stateDir: string, name: string, edit: RecordEdit): Promise<boolean> {
  const path = join(stateDir, 'apps', `${name}.json`);
  const text = await readFile(path, 'utf8').catch(() => undefined);
  if (text === undefined) return false;
  if (edit === 'move-aside') {
    if (recordReadable(text)) return false;
    await rename(path, `${path}.corrupt`);
    return true;
  }
  const newer = edit === 'newer' && recordReadable(text) ? `${JSON.stringify({ ...(JSON.parse(text) as object), version: 2, addedLater: { x: 1 } }, null, 2)}\n` : undefined;
  await writeFile(path, newer ?? `{"version":1,"name":"${name}","appId":"\u0000\u0001garbage`);
  return true;
}
