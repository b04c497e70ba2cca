// A parsed YAML document → plain data in one pass over its nodes, in place of yaml's `toJS`, whose
// guards do not bound the work (issue 13): its duplicate-key check compares each key with every
// earlier one (50 000 keys under `x-junk` held the event loop 90–130 s), so parse.ts turns it off
// and this module checks keys with a Set; and its alias guard counts aliases, not what they bring
// in (99 merges of one 20 000-key anchor passed it, then took 20 s and 147 MB in `hash`). Here every
// node an alias brings in counts as if written out, and conversion stops at the first alias over
// the budget, so time and memory follow the budget whatever the file holds.
import { isAlias, isMap, isScalar, isSeq } from 'yaml';
import type { Document, Node, Pair, YAMLMap } from 'yaml';
import { AppError } from './errors.ts';
import type { SourcePosition } from './errors.ts';

// How far conversion may go; parse.ts says why these numbers.
export type DataLimits = {
  // nodes of the data with every alias and merge written out
  expandedNodes: number;
  // collections inside collections
  depth: number;
};

// The file, a way from a text offset to line:column, and the limits.
export type DataContext = { file: string; at(offset: number): SourcePosition; limits: DataLimits };

// An anchor seen so far: its data once its node is converted (`nodes`: its size written out).
type Anchored = { done: false } | { done: true; value: unknown; nodes: number };

// The data of `doc` as yaml's `toJS` gives it (YAML 1.2 core scalars, `<<` merges, aliases shared
// by reference), or AppError APP_YAML at the first duplicate key, bad alias or merge, or limit.
export function documentData(doc: Document.Parsed, context: DataContext): unknown {
  const { file, at, limits } = context;
  const anchors = new Map<string, Anchored>();
  let nodes = 0;
  const fail = (offset: number, problem: string): never => {
    throw new AppError('APP_YAML', file, problem, at(offset));
  };
  const offsetOf = (node: Node | null | undefined): number => node?.range?.[0] ?? 0;

  function convert(node: Node | null, depth: number): unknown {
    if (node === null) return null;
    const offset = offsetOf(node);
    if (isAlias(node)) return resolve(node.source, offset);
    if (depth > limits.depth) fail(offset, tooDeep(limits.depth));
    const start = nodes;
    grow(1, offset);
    const entry: Anchored | undefined = node.anchor ? { done: false } : undefined;
    if (node.anchor && entry) anchors.set(node.anchor, entry);
    let value: unknown;
    if (isMap(node)) value = mapData(node, depth);
    else if (isSeq(node)) value = node.items.map((item) => convert(item as Node | null, depth + 1));
    else if (isScalar(node)) value = typeof node.value === 'bigint' ? Number(node.value) : node.value;
    else value = fail(offset, 'is not valid YAML: a node of unknown kind; fix the syntax there');
    // Mutated in place: a later `&name` inside this node has replaced it in `anchors`, and an
    // alias after this node means that later one (YAML: the last anchor before the alias).
    if (entry) Object.assign(entry, { done: true, value, nodes: nodes - start });
    return value;
  }

  function grow(count: number, offset: number): void {
    nodes += count;
    if (nodes > limits.expandedNodes) {
      fail(
        offset,
        `expands to ${nodes} YAML nodes by here once its aliases and merges are written out, past the limit of ` +
          `${limits.expandedNodes}; this looks like an alias bomb, write the values out or alias smaller pieces`,
      );
    }
  }

  function resolve(name: string, offset: number): unknown {
    const anchored = anchors.get(name);
    if (anchored === undefined) fail(offset, `is not valid YAML: alias *${name} has no anchor &${name} before it; define the anchor first`);
    else if (!anchored.done) fail(offset, `is not valid YAML: alias *${name} is inside its own anchor &${name}, so it never ends; remove it`);
    else {
      grow(anchored.nodes, offset);
      return anchored.value;
    }
  }

  function mapData(map: YAMLMap, depth: number): Record<string, unknown> {
    const data: Record<string, unknown> = {};
    // yaml's own rule: scalar keys with equal values are duplicates (1 and "1" are not).
    const seen = new Map<unknown, number>();
    for (const { key, value } of map.items as Pair<Node | null, Node | null>[]) {
      if (isMergeKey(key)) {
        mergeInto(data, convert(value, depth + 1), offsetOf(value ?? key));
        continue;
      }
      if (isScalar(key) && !Number.isNaN(key.value)) {
        const first = seen.get(key.value);
        if (first !== undefined) {
          fail(offsetOf(key), `is not valid YAML: Map keys must be unique, and ${JSON.stringify(String(key.value))} is already a key of this mapping on line ${at(first).line}; remove or rename one`);
        }
        seen.set(key.value, offsetOf(key));
      }
      const name = keyName(convert(key, depth + 1), offsetOf(key));
      setOwn(data, name, convert(value, depth + 1), true);
    }
    return data;
  }

  // `<<: *base` or `<<: [*a, *b]`: keys the mapping does not have yet, the first source winning.
  function mergeInto(data: Record<string, unknown>, source: unknown, offset: number): void {
    for (const from of Array.isArray(source) ? source : [source]) {
      if (typeof from !== 'object' || from === null || Array.isArray(from)) {
        fail(offset, 'is not valid YAML: `<<` merges a mapping or a list of mappings, nothing else; fix the value after `<<:`');
      }
      for (const [name, value] of Object.entries(from)) setOwn(data, name, value, false);
    }
  }

  function keyName(key: unknown, offset: number): string {
    if (key === null) return '';
    if (typeof key === 'object') return fail(offset, 'is not valid compose YAML: a mapping key must be a name or a number, not a mapping or a list; write it as a plain key');
    return String(key);
  }

  return convert(doc.contents, 0);
}

// The refusal of a file nested past `limit` levels, here or by yaml's own stack overflow.
export function tooDeep(limit: number): string {
  return `nests collections more than ${limit} levels deep, the limit for a compose file (real ones need about 5); flatten it`;
}

// The merge key `<<` (resolved to a symbol with `merge: true`), plain only: `"<<"` is a name.
function isMergeKey(key: Node | null): boolean {
  if (!isScalar(key) || (key.type !== undefined && key.type !== 'PLAIN')) return false;
  return key.value === '<<' || (typeof key.value === 'symbol' && key.value.description === '<<');
}

// Set an own property (also `__proto__`, which an assignment would not create); `replace` false
// keeps a value already there, as a merge must.
function setOwn(data: Record<string, unknown>, name: string, value: unknown, replace: boolean): void {
  if (Object.hasOwn(data, name)) {
    if (replace) data[name] = value;
  } else if (name in data) {
    Object.defineProperty(data, name, { value, writable: true, enumerable: true, configurable: true });
  } else {
    data[name] = value;
  }
}
