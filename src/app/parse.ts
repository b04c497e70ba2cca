// Compose text → plain data, keeping a way back to line:column so every later error can point at
// the offending node. Parsing is YAML 1.2 (what docker compose's Go parser resolves `80:80` as: a
// string) plus `<<` merge keys, which compose files use with anchors.
import { LineCounter, isMap, isPair, isScalar, parseAllDocuments } from 'yaml';
import type { Document, Node } from 'yaml';
import { AppError } from './errors.ts';
import type { SourcePosition } from './errors.ts';
import type { DataPath, Source } from './source.ts';
import { documentData, tooDeep } from './yaml-data.ts';
import type { DataLimits } from './yaml-data.ts';
import { findNodeOverflow } from './yaml-count.ts';

// The parsed file: its data, and where a path's node starts in the text.
export type ParsedCompose = Source & { data: unknown };

// Bounds on one file's parse, so no file holds the event loop (every other app's deploy, SIGTERM)
// for long (issue 13). Sentry's self-hosted compose file, the largest real one we know (35 KB, 72
// services), has 1 787 nodes by the count below, 142 aliases, 4 897 nodes written out and 5 levels;
// the files under test/fixtures at most 104 nodes. Each limit is 10× or more above that, and a
// file at a limit costs 0.2–0.3 s on the 2-core bench machine (`node bench/parse.ts`).
// Nodes in the text: keys, values and list items (see yaml-count.ts).
const MAX_NODES = 20_000;
const DATA_LIMITS: DataLimits = {
  // Nodes once aliases and merges are written out, which later passes walk. Only aliases make
  // it larger than MAX_NODES; it is what stops an alias bomb, where yaml's count of 100 aliases
  // let 99 merges of a 20 000-key anchor through (20 s) and refused Sentry's file.
  expandedNodes: 100_000,
  // Compose itself nests about 5 levels (services, web, healthcheck, test, item).
  depth: 64,
};

// Decode the file's bytes exactly as upstream `dstack deploy` does (Rust `read_to_string`): strict
// UTF-8, and a leading BOM is kept, so the manifest embeds the same text and the hash agrees.
export function decodeComposeText(file: string, bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch (cause) {
    throw new AppError('APP_ENCODING', file, 'is not valid UTF-8; save it as UTF-8 (compose and dstack read it so)', undefined, {
      cause,
    });
  }
}

// Parse compose text; throws AppError APP_EMPTY / APP_YAML with the line and column of the fault.
export function parseCompose(file: string, text: string): ParsedCompose {
  if (!text.isWellFormed()) {
    throw new AppError('APP_ENCODING', file, 'contains unpaired UTF-16 surrogates; save it as valid UTF-8');
  }
  const lineCounter = new LineCounter();
  const at = (offset: number): SourcePosition => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  const overflow = findNodeOverflow(text, MAX_NODES);
  if (overflow !== undefined) {
    throw new AppError('APP_YAML', file, tooManyNodes(), positionIn(text, overflow));
  }
  // Duplicate keys are checked by documentData, in linear time (yaml's own check is quadratic).
  const docs = parseAllDocuments(text, { lineCounter, merge: true, prettyErrors: false, uniqueKeys: false });
  const list = Array.isArray(docs) ? docs : [];
  for (const doc of list) {
    const error = doc.errors[0];
    // yaml reports its own stack overflow on deep nesting as RESOURCE_EXHAUSTION.
    if (error?.code === 'RESOURCE_EXHAUSTION') throw new AppError('APP_YAML', file, tooDeep(DATA_LIMITS.depth), at(error.pos[0]));
    if (error) {
      throw new AppError('APP_YAML', file, `is not valid YAML: ${error.message}; fix the syntax there`, at(error.pos[0]));
    }
  }
  const [doc, second] = list;
  if (second) {
    const start = second.range[0];
    throw new AppError('APP_YAML', file, 'holds more than one YAML document (`---`); keep one compose file per app', at(start));
  }
  // No document, only comments, a bare `---` or `null`: all mean "nothing here".
  const data = doc ? documentData(doc, { file, at, limits: DATA_LIMITS }) : null;
  if (!doc || data === null || data === undefined) {
    throw new AppError(
      'APP_EMPTY',
      file,
      'is empty; an app needs at least a `services:` mapping (to remove the app, delete the file instead)',
    );
  }
  return { file, data, locate: (path) => locateNode(doc, path, at) };
}

function tooManyNodes(): string {
  return (
    `has more than ${MAX_NODES} YAML nodes (keys, values and list items; the one past the limit is here), the limit for ` +
    'one compose file (real ones have a few thousand at most); move bulk data out of it (into the image, a volume, or one ' +
    '`configs: content:` string) or remove unused `x-` sections'
  );
}

// Line and column of `offset` in `text`, counted only up to it (the file was not parsed).
function positionIn(text: string, offset: number): SourcePosition {
  const before = text.slice(0, offset);
  const lineStart = before.lastIndexOf('\n') + 1;
  let line = 1;
  for (let i = before.indexOf('\n'); i !== -1; i = before.indexOf('\n', i + 1)) line += 1;
  return { line, column: offset - lineStart + 1 };
}

// Walk the YAML tree along `path` and return the deepest node's start. Paths through merged
// (`<<`) values may not exist in the tree; the nearest ancestor is then the best answer.
function locateNode(doc: Document.Parsed, path: DataPath, at: (offset: number) => SourcePosition): SourcePosition | undefined {
  let node: Node | null = doc.contents;
  let best: SourcePosition | undefined = node?.range ? at(node.range[0]) : undefined;
  for (const step of path) {
    const next = childOf(node, step);
    if (!next) break;
    node = next;
    if (next.range) best = at(next.range[0]);
  }
  return best;
}

function childOf(node: Node | null, step: string | number): Node | null {
  if (!node || !('items' in node) || !Array.isArray(node.items)) return null;
  if (isMap(node)) {
    const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(step));
    if (!pair) return null;
    // Point at the value when it exists; `key:` with no value has only the key to show.
    return (pair.value as Node | null) ?? (pair.key as Node);
  }
  const item: unknown = typeof step === 'number' ? node.items[step] : undefined;
  return (item as Node | undefined) ?? null;
}
