// A seeded list of soak ops. The generator keeps a model of apps.d and of the hand-edited state,
// so every op makes sense when generated (renames to a free name, one port per present file, a
// move-aside of a record it corrupted); when a shrunk list drops some, apply.ts turns an op on a
// missing file or record into nothing. Only `prng(seed)` decides: the same seed gives the same list.
import {
  AUTH_EDITS, CONTENTS, ENV_KEYS, FAULTY_METHODS, FOREIGN_IDS, GHOSTS, identityOf, JUNK, NAMES, PLAY_SLOTS, prng, WRITERS,
  type AuthEdit, type Op,
} from './ops.ts';

type FileModel = { slot: number; mode: number; uid: number };
type EnvModel = { keys: string[]; mode: number };

// The generator's picture of apps.d and the state it edits by hand.
type Model = {
  files: Map<string, FileModel>;
  env: Map<string, EnvModel>;
  junk: Set<string>;
  foreign: Set<string>;
  // Names whose state record it made unreadable (and has not moved aside yet).
  corrupt: Set<string>;
  // Ops due once the list reaches `at` ops (the delete of a ghost's invalid file).
  later: Array<{ at: number; op: Op }>;
  version: number;
};

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

const ENV_OK_MODES = new Set([0o600, 0o400]);

// NAME.env: created beside an app, its values or its key set changed, deleted, or its mode
// broken (0644, which must be refused) and mended.
function envOp(random: () => number, model: Model, name: string): Op {
  const before = model.env.get(name);
  const keys = () => ENV_KEYS.filter(() => random() < 0.6);
  const mode = () => pick(random, [0o600, 0o600, 0o600, 0o600, 0o400, 0o644]);
  const kind = before ? choose(random, { values: 4, keys: 3, delete: 2, chmod: 2 }) : 'keys';
  if (kind === 'delete') {
    model.env.delete(name);
    return { kind: 'env-delete', name };
  }
  if (kind === 'chmod' && before) {
    const next = ENV_OK_MODES.has(before.mode) ? 0o644 : 0o600;
    model.env.set(name, { ...before, mode: next });
    return { kind: 'env-chmod', name, mode: next };
  }
  const chosen = kind === 'values' && before ? before.keys : keys();
  const set = chosen.length > 0 ? chosen : [pick(random, ENV_KEYS)];
  const next = { keys: set, mode: mode() };
  model.env.set(name, next);
  return { kind: 'env', name, keys: set, version: ++model.version, mode: next.mode };
}

function authOp(random: () => number, model: Model): Op {
  const edit: AuthEdit = choose(random, { 'add-foreign': 2, 'remove-foreign': 1, drop: 3, tamper: 2, reinstall: 1 } satisfies Record<(typeof AUTH_EDITS)[number], number>);
  const absent = FOREIGN_IDS.filter((id) => !model.foreign.has(id));
  const pickNumber = Math.floor(random() * 1000);
  if (edit === 'add-foreign' && absent.length > 0) model.foreign.add(absent[pickNumber % absent.length] as string);
  if (edit === 'remove-foreign') model.foreign.delete([...model.foreign][pickNumber % Math.max(1, model.foreign.size)] ?? '');
  if (edit === 'reinstall') model.foreign.clear();
  return { kind: 'auth', edit, pick: pickNumber };
}

function recordOp(random: () => number, model: Model, present: string[]): Op | undefined {
  const corrupt = [...model.corrupt];
  if (corrupt.length > 0 && random() < 0.5) {
    const name = pick(random, corrupt);
    model.corrupt.delete(name);
    return { kind: 'record', name, edit: 'move-aside' };
  }
  if (present.length === 0) return undefined;
  const name = identityOf(pick(random, present));
  model.corrupt.add(name);
  return { kind: 'record', name, edit: random() < 0.6 ? 'garbage' : 'newer' };
}

function fileOp(random: () => number, model: Model, at: number): Op | undefined {
  const present = [...model.files.keys()];
  const kind = choose(random, {
    write: 30, rewrite: 8, touch: 5, chmod: 5, chown: 3, delete: 8, rename: 5, dup: 2, junk: 6,
    env: 12, link: 2, ghost: 2, auth: 6, record: 3,
  });
  if (kind === 'auth') return authOp(random, model);
  if (kind === 'record') return recordOp(random, model, present.filter((f) => !GHOSTS.some((g) => identityOf(f) === g)));
  if (kind === 'ghost' || kind === 'link') {
    const taken = new Set(present.map(identityOf));
    const free = (kind === 'ghost' ? GHOSTS : NAMES).filter((n) => !taken.has(n));
    if (free.length === 0) return undefined;
    const file = `${pick(random, free)}.yml`;
    const slot = freeSlot(model, random);
    model.files.set(file, { slot, mode: kind === 'link' ? 0o600 : 0o644, uid: 0 });
    if (kind === 'link') return { kind: 'link', file, slot, version: ++model.version };
    model.later.push({ at: at + 2 + Math.floor(random() * 6), op: { kind: 'delete', file } });
    return { kind: 'write', file, content: pick(random, CONTENTS.slice(1)), version: ++model.version, slot, writer: 'mv' };
  }
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
    model.files.set(file, { slot, mode, uid: before && keeps ? before.uid : 0 });
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
      model.files.set(twin, { slot, mode: 0o644, uid: 0 });
      return { kind: 'write', file: twin, content: 'valid', version: ++model.version, slot, writer: 'mv' };
    }
    case 'junk': {
      const junk = pick(random, JUNK);
      const create = !model.junk.has(junk);
      if (create) model.junk.add(junk);
      else model.junk.delete(junk);
      return { kind: 'junk', file: junk, create };
    }
    case 'env': {
      const name = identityOf(file);
      return GHOSTS.some((g) => g === name) ? undefined : envOp(random, model, name);
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

// Apply a delete that came due to the model (the file may have been renamed or deleted since).
function applyLater(model: Model, op: Op): Op | undefined {
  if (op.kind !== 'delete' || !model.files.has(op.file)) return undefined;
  model.files.delete(op.file);
  return op;
}

// Turn the model into a host on which every file deploys, each on a port no VM holds (two apps
// that swapped ports would otherwise wait for each other), with its env file readable and no
// record left corrupt: the last ops of a run, so the final check is strict for every identity.
// Foreign allowlist entries stay, and must still be there.
function healOps(model: Model): Op[] {
  const ops: Op[] = [];
  for (const { op } of model.later.splice(0)) {
    const due = applyLater(model, op);
    if (due) ops.push(due);
  }
  for (const name of [...model.corrupt].sort()) ops.push({ kind: 'record', name, edit: 'move-aside' });
  model.corrupt.clear();
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
    model.files.set(file, { slot, mode: 0o644, uid: 0 });
  }
  for (const [name, env] of model.env) {
    if (!ENV_OK_MODES.has(env.mode)) ops.push({ kind: 'env-chmod', name, mode: 0o600 });
  }
  ops.push({ kind: 'check' });
  return ops;
}

// `count` ops from `seed`, with a check about every `checkEvery` ops and, at the end, the ops that
// make every file deployable followed by the final check.
export function generateOps(seed: number, count: number, checkEvery = 40): Op[] {
  const random = prng(seed);
  const model: Model = { files: new Map(), env: new Map(), junk: new Set(), foreign: new Set(), corrupt: new Set(), later: [], version: 0 };
  const ops: Op[] = [];
  while (ops.length < count) {
    const due = model.later.filter((l) => l.at <= ops.length);
    model.later = model.later.filter((l) => l.at > ops.length);
    for (const { op } of due) {
      const applied = applyLater(model, op);
      if (applied) ops.push(applied);
    }
    const op = random() < 0.75 ? fileOp(random, model, ops.length) : chaosOp(random);
    if (op) ops.push(op);
    if (random() < 1 / checkEvery) ops.push({ kind: 'check' });
  }
  return [...ops, ...healOps(model)];
}
