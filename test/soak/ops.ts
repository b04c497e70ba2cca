// The chaos soak's operations: what an operator, an editor or a config-management tool does to
// apps.d, and what goes wrong around the supervisor (failed and slow VMM calls, crashed VMs, a VMM
// restart, kill -9). A seed gives the same list every time; ops name ports by slot, so a replay
// on another stage (other free ports) is the same run. The generator keeps a model of apps.d so
// every op makes sense when generated (renames to a free name, one port per present file); when
// a shrunk list drops some, apply.ts turns an op on a missing file into nothing.

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
  | { kind: 'fail'; method: (typeof FAULTY_METHODS)[number]; count: number; afterApply: boolean }
  | { kind: 'latency'; ms: number }
  | { kind: 'crash-vm'; pick: number }
  | { kind: 'restart-vmm'; downtimeMs: number }
  | { kind: 'kill'; signal: 'SIGKILL' | 'SIGTERM' }
  | { kind: 'pause'; ms: number }
  // Wait until the supervisor has converged and check every invariant.
  | { kind: 'check' };

// The app identities the soak plays with, and the files around them that are never apps.
export const NAMES = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot'] as const;
export const JUNK = [
  '.alpha.yml.swp', 'alpha.yml~', '4913', '#bravo.yml#', 'bravo.yml.bak', 'charlie.yml.dpkg-old', 'delta.yml.rpmnew',
  'My_App.yml', 'web app.yaml', 'echo.yml.disabled', '.hidden.yml', 'sedQ1w2E3', 'foxtrot.yml.ucf-dist',
  // Named like apps but refused: a directory and a 2 MiB file (apply.ts makes them so).
  'sub.yml', 'big.yml',
];

// Port slots: more than files can ever hold at once, so a new file always finds a free one; then
// one fresh slot per file for the closing ops, which no VM can hold yet.
const PLAY_SLOTS = NAMES.length * 2 + 4;
export const PORT_SLOTS = PLAY_SLOTS + NAMES.length * 2;

type FileModel = { slot: number; valid: boolean; mode: number; uid: number };

// The generator's picture of apps.d.
type Model = { files: Map<string, FileModel>; junk: Set<string>; version: number };

const identityOf = (file: string) => file.replace(/\.ya?ml$/, '');

// Weighted choice: `table` maps an outcome to its weight.
function choose<T extends string>(random: () => number, table: Record<T, number>): T {
  const entries = Object.entries(table) as Array<[T, number]>;
  let roll = random() * entries.reduce((sum, [, w]) => sum + w, 0);
  for (const [value, weight] of entries) {
    roll -= weight;
    if (roll < 0) return value;
  }
  return entries[entries.length - 1]![0];
}

function pick<T>(random: () => number, list: readonly T[]): T {
  return list[Math.floor(random() * list.length)] as T;
}

function freeSlot(model: Model, random: () => number): number {
  const used = new Set([...model.files.values()].map((f) => f.slot));
  const free = Array.from({ length: PLAY_SLOTS }, (_, i) => i).filter((s) => !used.has(s));
  return pick(random, free);
}

// Turn the model into a directory every file of which deploys, each on a port no VM holds (two
// apps that swapped ports would otherwise wait for each other): the last ops of a run, so the
// final check is strict for every identity.
function healOps(model: Model): Op[] {
  const ops: Op[] = [];
  let fresh = PLAY_SLOTS;
  for (const [file, f] of [...model.files]) {
    const twin = file.endsWith('.yaml') ? `${identityOf(file)}.yml` : undefined;
    if (twin !== undefined && model.files.has(twin)) {
      ops.push({ kind: 'delete', file });
      model.files.delete(file);
      continue;
    }
    if (f.mode !== 0o644) ops.push({ kind: 'chmod', file, mode: 0o644 });
    if (f.uid !== 0) ops.push({ kind: 'chown', file, uid: 0 });
    const slot = fresh++;
    ops.push({ kind: 'write', file, content: 'valid', version: ++model.version, slot, writer: 'mv' });
    model.files.set(file, { slot, mode: 0o644, uid: 0, valid: true });
  }
  ops.push({ kind: 'check' });
  return ops;
}

function fileOp(random: () => number, model: Model): Op | undefined {
  const present = [...model.files.keys()];
  const kind = choose(random, { write: 30, rewrite: 8, touch: 5, chmod: 5, chown: 3, delete: 8, rename: 5, dup: 2, junk: 6 });
  if (kind === 'write' || present.length === 0) {
    const name = pick(random, NAMES);
    const file = present.find((f) => identityOf(f) === name) ?? `${name}.yml`;
    const content = random() < 0.85 ? 'valid' : pick(random, CONTENTS.slice(1));
    const before = model.files.get(file);
    const writer = pick(random, WRITERS);
    const slot = before?.slot ?? freeSlot(model, random);
    // Replacing tools create a new file (root, 0644); in-place writers and sed keep mode and owner.
    const keeps = writer === 'inplace' || writer === 'chunked' || writer === 'sed';
    const mode = before && (keeps || writer === 'vim') ? before.mode : 0o644;
    model.files.set(file, { slot, valid: content === 'valid', mode, uid: before && keeps ? before.uid : 0 });
    return { kind: 'write', file, content, version: ++model.version, slot, writer };
  }
  const file = pick(random, present);
  const f = model.files.get(file) as FileModel;
  switch (kind) {
    case 'rewrite':
      return { kind: 'rewrite', file, writer: pick(random, WRITERS) };
    case 'touch':
      return { kind: 'touch', file };
    case 'chmod': {
      const mode = pick(random, [0o644, 0o644, 0o640, 0o600, 0o664, 0o646]);
      model.files.set(file, { ...f, mode });
      return { kind: 'chmod', file, mode };
    }
    case 'chown': {
      const uid = f.uid === 0 ? 4242 : 0;
      model.files.set(file, { ...f, uid });
      return { kind: 'chown', file, uid };
    }
    case 'delete':
      model.files.delete(file);
      return { kind: 'delete', file };
    case 'rename': {
      const taken = new Set(present.map(identityOf));
      const free = NAMES.filter((n) => !taken.has(n));
      if (free.length === 0) return undefined;
      const to = `${pick(random, free)}.yml`;
      model.files.delete(file);
      model.files.set(to, f);
      return { kind: 'rename', from: file, to };
    }
    case 'dup': {
      const twin = `${identityOf(file)}.yaml`;
      if (file.endsWith('.yaml') || model.files.has(twin)) return undefined;
      const slot = freeSlot(model, random);
      model.files.set(twin, { slot, valid: true, mode: 0o644, uid: 0 });
      return { kind: 'write', file: twin, content: 'valid', version: ++model.version, slot, writer: 'mv' };
    }
    case 'junk': {
      const junk = pick(random, JUNK);
      const create = !model.junk.has(junk);
      if (create) model.junk.add(junk);
      else model.junk.delete(junk);
      return { kind: 'junk', file: junk, create };
    }
    default:
      return undefined;
  }
}

function chaosOp(random: () => number): Op {
  switch (choose(random, { fail: 8, latency: 4, crash: 4, vmm: 2, kill: 4, pause: 3 })) {
    case 'fail':
      return { kind: 'fail', method: pick(random, FAULTY_METHODS), count: 1 + Math.floor(random() * 3), afterApply: random() < 0.3 };
    case 'latency':
      return { kind: 'latency', ms: random() < 0.3 ? 0 : Math.floor(random() * 40) };
    case 'crash':
      return { kind: 'crash-vm', pick: Math.floor(random() * 1000) };
    case 'vmm':
      return { kind: 'restart-vmm', downtimeMs: Math.floor(random() * 300) };
    case 'kill':
      return { kind: 'kill', signal: random() < 0.75 ? 'SIGKILL' : 'SIGTERM' };
    default:
      return { kind: 'pause', ms: 20 + Math.floor(random() * 300) };
  }
}

// `count` ops from `seed`, with a check about every `checkEvery` ops and, at the end, the ops that
// make every file deployable followed by the final check.
export function generateOps(seed: number, count: number, checkEvery = 40): Op[] {
  const random = prng(seed);
  const model: Model = { files: new Map(), junk: new Set(), version: 0 };
  const ops: Op[] = [];
  while (ops.length < count) {
    const op = random() < 0.75 ? fileOp(random, model) : chaosOp(random);
    if (op) ops.push(op);
    if (random() < 1 / checkEvery) ops.push({ kind: 'check' });
  }
  return [...ops, ...healOps(model)];
}

// One line per op, for failure reports.
export function describeOp(op: Op): string {
  const { kind, ...rest } = op;
  const fields = Object.entries(rest).map(([k, v]) => `${k}=${k === 'mode' ? (v as number).toString(8) : JSON.stringify(v)}`);
  return [kind, ...fields].join(' ');
}
