// The chaos soak's operations: what an operator, an editor or a config-management tool does to
// apps.d (compose files, NAME.env beside them, hard links), to the host's state (hand edits of
// auth-config.json, a corrupt state record), and what goes wrong around the supervisor (failed and
// slow VMM calls, crashed VMs, a VMM restart, kill -9). Ops name ports by slot, so a replay on
// another stage (other free ports) is the same run; generate.ts makes a seeded list of them.

// A small deterministic PRNG (mulberry32): a failing run is replayed from its seed.
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// How a tool replaces a file, each the way strace shows it (apply.ts has the steps).
export const WRITERS = ['inplace', 'chunked', 'mv', 'vim', 'sed', 'ansible', 'puppet', 'salt', 'dpkg'] as const;
export type Writer = (typeof WRITERS)[number];

// What a write puts in the file: a deployable compose file, or one of the ways to get it wrong.
export const CONTENTS = ['valid', 'invalid-yaml', 'empty', 'schema', 'not-compose'] as const;
export type Content = (typeof CONTENTS)[number];

// VMM methods a fault can hit.
export const FAULTY_METHODS = ['CreateVm', 'UpdateVm', 'StartVm', 'StopVm', 'ShutdownVm', 'RemoveVm', 'Status'] as const;

// Variables a NAME.env may set; a write sets a non-empty subset of them.
export const ENV_KEYS = ['API_KEY', 'DB_PASSWORD', 'TOKEN'] as const;

// Hand edits of auth-config.json: a foreign app's entry added or removed (the supervisor must keep
// what is not its own), a managed app's entry dropped or its hashes changed (the next resync must
// put it back, issue 13 item 3), and the whole file rewritten as `dstackup install` does.
export const AUTH_EDITS = ['add-foreign', 'remove-foreign', 'drop', 'tamper', 'reinstall'] as const;
export type AuthEdit = (typeof AUTH_EDITS)[number];

// App ids of entries an operator adds by hand for apps the supervisor does not manage.
export const FOREIGN_IDS = ['feedfacefeedfacefeedfacefeedfacefeedface', 'deadbeefdeadbeefdeadbeefdeadbeefdeadbeef'] as const;

// What happens to `<state_dir>/apps/NAME.json`: garbage bytes, a record of a newer format version
// (a downgrade), or the operator moving a corrupt one aside as its status says (issue 13 item 2).
export const RECORD_EDITS = ['garbage', 'newer', 'move-aside'] as const;
export type RecordEdit = (typeof RECORD_EDITS)[number];

export type Op =
  | { kind: 'write'; file: string; content: Content; version: number; slot: number; writer: Writer }
  // Identical bytes written again by a tool (rule 6: no operation).
  | { kind: 'rewrite'; file: string; writer: Writer }
  | { kind: 'touch'; file: string }
  | { kind: 'chmod'; file: string; mode: number }
  | { kind: 'chown'; file: string; uid: number }
  | { kind: 'delete'; file: string }
  | { kind: 'rename'; from: string; to: string }
  // A file that is not an app: created, or removed again.
  | { kind: 'junk'; file: string; create: boolean }
  // NAME.env replaced in one step (temp + rename, like `install -m MODE`), with `keys` set to
  // values that differ per version; a mode other than 0600/0400 must be refused.
  | { kind: 'env'; name: string; keys: string[]; version: number; mode: number }
  | { kind: 'env-chmod'; name: string; mode: number }
  | { kind: 'env-delete'; name: string }
  // `file` made a hard link to a root-only compose file outside apps.d (issue 13 item 6).
  | { kind: 'link'; file: string; slot: number; version: number }
  // `pick` chooses among the managed entries (by VM, in name order) when the edit needs one.
  | { kind: 'auth'; edit: AuthEdit; pick: number }
  | { kind: 'record'; name: string; edit: RecordEdit }
  | { kind: 'fail'; method: (typeof FAULTY_METHODS)[number]; count: number; afterApply: boolean }
  | { kind: 'latency'; ms: number }
  | { kind: 'crash-vm'; pick: number }
  | { kind: 'restart-vmm'; downtimeMs: number }
  | { kind: 'kill'; signal: 'SIGKILL' | 'SIGTERM' }
  | { kind: 'pause'; ms: number }
  // Wait until the supervisor has converged, check every invariant, then watch it stay quiet.
  | { kind: 'check' };

// The app identities the soak plays with; GHOSTS only ever get an invalid file that is deleted a
// few ops later (issue 13 item 7); and the files around them that are never apps.
export const NAMES = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot'] as const;
export const GHOSTS = ['golf', 'hotel'] as const;
export const JUNK = [
  '.alpha.yml.swp', 'alpha.yml~', '4913', '#bravo.yml#', 'bravo.yml.bak', 'charlie.yml.dpkg-old', 'delta.yml.rpmnew',
  'My_App.yml', 'web app.yaml', 'echo.yml.disabled', '.hidden.yml', 'sedQ1w2E3', 'foxtrot.yml.ucf-dist',
  'alpha.env.bak', '.bravo.env.swp',
  // Named like apps but refused: a directory and a 2 MiB file (apply.ts makes them so).
  'sub.yml', 'big.yml',
];

// Port slots: more than files can ever hold at once, so a new file always finds a free one; then
// one fresh slot per file for the closing ops, which no VM can hold yet.
export const PLAY_SLOTS = (NAMES.length + GHOSTS.length) * 2 + 4;
export const PORT_SLOTS = PLAY_SLOTS + (NAMES.length + GHOSTS.length) * 2;

// The identity of an app file name.
export const identityOf = (file: string) => file.replace(/\.ya?ml$/, '');

// The text of NAME.env for `keys` at `version`: every value changes with the version.
export function envText(keys: readonly string[], version: number): string {
  return keys.map((k) => `${k}=v${version}-${k.toLowerCase()}\n`).join('');
}

// One line per op, for failure reports.
export function describeOp(op: Op): string {
  const { kind, ...rest } = op;
  const fields = Object.entries(rest).map(([k, v]) => `${k}=${k === 'mode' ? (v as number).toString(8) : JSON.stringify(v)}`);
  return [kind, ...fields].join(' ');
}
