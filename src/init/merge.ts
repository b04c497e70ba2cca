// Re-rendering a config without trampling the operator: the file on disk wins for every key
// (values, extra keys, extra tables), template defaults fill only what is missing, and the few
// keys the supervisor derives from supervisor.toml are enforced, each with a warning that names
// the key. Used for vmm.toml, kms.toml and auth-config.json alike (all are trees of tables).

// A parsed TOML or JSON document.
export type Doc = Record<string, unknown>;

// A key the supervisor owns: its path of table names and the value it must have.
export type EnforcedKey = { path: readonly string[]; value: unknown };

// The merged document, one warning per enforced key the file had set differently, and whether
// the result differs in content from what is on disk (key order and formatting do not count).
export type MergeResult = { doc: Doc; warnings: string[]; changed: boolean };

// Merge `existing` (undefined = no file yet) with `defaults`, then apply `enforced`.
export function mergeOperatorEdits(file: string, defaults: Doc, existing: Doc | undefined, enforced: readonly EnforcedKey[]): MergeResult {
  const doc = existing === undefined ? cloneDoc(defaults) : fillMissing(cloneDoc(existing), defaults);
  const warnings: string[] = [];
  for (const { path, value } of enforced) {
    const before = existing === undefined ? undefined : getPath(existing, path);
    if (before !== undefined && canonical(before) !== canonical(value)) {
      warnings.push(
        `${file}: key "${path.join('.')}" is managed by dstack-supervisor; replacing ${canonical(before)} with ${canonical(value)}. Change it in supervisor.toml [init] instead`,
      );
    }
    setPath(doc, path, value);
  }
  const changed = existing === undefined || canonical(existing) !== canonical(doc);
  return { doc, warnings, changed };
}

// True for a table: a plain or null-prototype object (smol-toml returns the latter).
export function isTable(value: unknown): value is Doc {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === null || proto === Object.prototype;
}

// The value at `path`, or undefined when any part of it is missing.
export function getPath(doc: Doc, path: readonly string[]): unknown {
  let node: unknown = doc;
  for (const key of path) {
    if (!isTable(node) || !Object.hasOwn(node, key)) return undefined;
    node = node[key];
  }
  return node;
}

// A stable text form for comparing values: table keys sorted, arrays in order.
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    isTable(v) ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]])) : v,
  );
}

function fillMissing(target: Doc, defaults: Doc): Doc {
  for (const [key, value] of Object.entries(defaults)) {
    const current = target[key];
    if (!Object.hasOwn(target, key)) target[key] = cloneValue(value);
    else if (isTable(current) && isTable(value)) fillMissing(current, value);
  }
  return target;
}

function setPath(doc: Doc, path: readonly string[], value: unknown): void {
  let node = doc;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (isTable(next)) node = next;
    else node = node[key] = {};
  }
  const last = path[path.length - 1];
  if (last !== undefined) node[last] = cloneValue(value);
}

function cloneDoc(doc: Doc): Doc {
  return Object.fromEntries(Object.entries(doc).map(([k, v]) => [k, cloneValue(v)]));
}

function cloneValue(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(cloneValue);
  return isTable(value) ? cloneDoc(value) : value;
}
