// Compose text → plain data, keeping a way back to line:column so every later error can point at
// the offending node. Parsing is YAML 1.2 (what docker compose's Go parser resolves `80:80` as: a
// string) plus `<<` merge keys, which compose files use with anchors.
import { LineCounter, isMap, isPair, isScalar, parseAllDocuments } from 'yaml';
import type { Document, Node } from 'yaml';
import { AppError } from './errors.ts';
import type { SourcePosition } from './errors.ts';
import type { DataPath, Source } from './source.ts';

// The parsed file: its data, and where a path's node starts in the text.
export type ParsedCompose = Source & { data: unknown };

// Billion-laughs guard: each alias may expand at most this many nodes in total. Real compose files
// use a handful of anchors; an exponential bomb crosses this within a few levels and fails fast.
const MAX_ALIAS_COUNT = 100;

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
  const docs = parseAllDocuments(text, { lineCounter, merge: true, prettyErrors: false });
  const list = Array.isArray(docs) ? docs : [];
  const at = (offset: number): SourcePosition => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  for (const doc of list) {
    const error = doc.errors[0];
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
  const data = doc ? toData(file, doc, at) : null;
  if (!doc || data === null || data === undefined) {
    throw new AppError(
      'APP_EMPTY',
      file,
      'is empty; an app needs at least a `services:` mapping (to remove the app, delete the file instead)',
    );
  }
  return { file, data, locate: (path) => locateNode(doc, path, at) };
}

function toData(file: string, doc: Document.Parsed, at: (offset: number) => SourcePosition): unknown {
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (cause) {
    // yaml throws a ReferenceError once alias expansion passes the limit, and also for an alias
    // whose anchor is missing, which is no bomb (that one was reported as a bomb: test/hostile).
    const start = doc.contents?.range[0] ?? 0;
    const unresolved = /^Unresolved alias[^:]*: (.*)$/.exec(cause instanceof Error ? cause.message : '')?.[1];
    if (unresolved !== undefined) {
      throw new AppError('APP_YAML', file, `is not valid YAML: alias *${unresolved} has no anchor &${unresolved} before it; define the anchor first`, at(start), { cause });
    }
    throw new AppError(
      'APP_YAML',
      file,
      `expands YAML aliases too often (more than ${MAX_ALIAS_COUNT}); this looks like an alias bomb, write the values out`,
      at(start),
      { cause },
    );
  }
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
