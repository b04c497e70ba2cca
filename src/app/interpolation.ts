// Find compose `${VAR}` / `$VAR` references, following compose's interpolation grammar: `$$` is a
// literal `$`; `${VAR:-x}`/`${VAR-x}` fall back to x, `${VAR:+x}`/`${VAR+x}` substitute only when
// set, `${VAR:?msg}`/`${VAR?msg}` abort with msg when unset. The values come from NAME.env inside
// the CVM, so the host can tell which names will be missing before anything boots.

// How a reference behaves when its variable is not set.
export type ReferenceKind = 'plain' | 'fallback' | 'required';

// One `$` reference found in a string.
export type Reference = { name: string; kind: ReferenceKind; message: string };

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

// Every reference in `text`, including those nested inside another's fallback text.
export function findReferences(text: string): Reference[] {
  const found: Reference[] = [];
  let i = 0;
  while (i < text.length) {
    const dollar = text.indexOf('$', i);
    if (dollar === -1) break;
    const next = text[dollar + 1];
    if (next === '$') {
      i = dollar + 2;
    } else if (next === '{') {
      const end = closingBrace(text, dollar + 2);
      if (end === -1) break;
      found.push(...braced(text.slice(dollar + 2, end)));
      i = end + 1;
    } else {
      const name = NAME.exec(text.slice(dollar + 1))?.[0];
      if (name) found.push({ name, kind: 'plain', message: '' });
      i = dollar + 1 + (name?.length ?? 0);
    }
  }
  return found;
}

// The body of `${...}`: a name, then optionally an operator and its text.
function braced(body: string): Reference[] {
  const name = NAME.exec(body)?.[0];
  if (!name) return [];
  const rest = body.slice(name.length);
  const operator = /^:?[-?+]/.exec(rest)?.[0] ?? '';
  const argument = rest.slice(operator.length);
  const nested = findReferences(argument);
  if (operator.endsWith('?')) return [{ name, kind: 'required', message: argument }, ...nested];
  if (operator.endsWith('-') || operator.endsWith('+')) return [{ name, kind: 'fallback', message: '' }, ...nested];
  return [{ name, kind: 'plain', message: '' }];
}

// Index of the `}` closing a `${` whose body starts at `from`, skipping nested `${...}`.
function closingBrace(text: string, from: number): number {
  let depth = 1;
  for (let i = from; i < text.length; i++) {
    if (text[i] === '$' && text[i + 1] === '{') {
      depth++;
      i++;
    } else if (text[i] === '}' && --depth === 0) {
      return i;
    }
  }
  return -1;
}
