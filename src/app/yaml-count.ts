// A cap on a compose file's YAML nodes, checked before the `yaml` package builds its syntax tree.
// That tree costs microseconds and hundreds of bytes per node (1 MiB of `[1,1,…]`, 500 000 nodes:
// 10 s and 532 MB in `hash`; issue 13), so a file over the cap is refused without building it:
// the lexer alone is ~10× cheaper per token and stops at the cap, whatever the file's size.
import { CST, Lexer } from 'yaml';

// Tokens the lexer emits that are not text of the file (document start, flow error, scalar mark).
const CONTROL = new Set(['\x02', '\x18', '\x1f']);

// Tokens that begin a node: every key, value and list item has one (a plain or block scalar is
// marked by `\x1f`; an empty value by its `:` or `-`), so a document has at most this many nodes.
const NODE_TOKENS = new Set<string>([
  'scalar',
  'single-quoted-scalar',
  'double-quoted-scalar',
  'alias',
  'flow-map-start',
  'flow-seq-start',
  'seq-item-ind',
  'explicit-key-ind',
  'map-value-ind',
]);

// Where the count first passed `limit`: the offset of that token in `text`, or undefined when the
// whole text stays within it.
export function findNodeOverflow(text: string, limit: number): number | undefined {
  let nodes = 0;
  let offset = 0;
  for (const token of new Lexer().lex(text)) {
    const type = CST.tokenType(token);
    if (type !== null && NODE_TOKENS.has(type) && ++nodes > limit) return offset;
    if (!CONTROL.has(token)) offset += token.length;
  }
  return undefined;
}
