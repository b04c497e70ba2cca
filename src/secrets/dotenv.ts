// NAME.env in dotenv syntax: `KEY=value`, an optional `export `, single quotes (literal) and
// double quotes (\n \r \t \" \\ escapes), both of which may span lines, `#` comment lines and
// ` #` comments after unquoted values, blank lines. No shell expansion: `$HOME` stays `$HOME`,
// because the values are secrets handed over verbatim, not a script. Upstream's own parser
// (`parse_env_file` in dstack/vmm/src/vmm-cli.py) only splits at the first `=` and strips; this
// one is stricter so a typo is an error instead of a silently wrong secret.
import * as z from 'zod';
import { SecretsError } from './errors.ts';

// One variable, in the shape of dstack's encrypted_env JSON (`{"env":[{"key","value"}]}`).
export const EnvEntrySchema = z.object({ key: z.string(), value: z.string() });
export type EnvEntry = z.infer<typeof EnvEntrySchema>;

// A variable name the env file may set: what a POSIX shell accepts as a name.
export const ENV_KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

const DOUBLE_QUOTE_ESCAPES: Readonly<Record<string, string>> = { n: '\n', r: '\r', t: '\t', '"': '"', '\\': '\\' };

// What may follow a closing quote on its line: blanks and a comment.
const AFTER_QUOTE = /^\s*(?:#.*)?$/;

type Quoted = { value: string; after: string; lastLine: number };

// Messages name the line and at most the key: the line's text could be a pasted secret.
function parseError(file: string, line: number, problem: string): SecretsError {
  return new SecretsError('ENV_PARSE', `${file}:${line}: ${problem}`);
}

// Read a quoted value from `first` (the text after the opening quote on line index `start`),
// continuing over the following lines until the closing quote.
function readQuoted(file: string, key: string, quote: string, lines: readonly string[], start: number, first: string): Quoted {
  let value = '';
  let text = first;
  for (let index = start; ; ) {
    for (let i = 0; i < text.length; i += 1) {
      const c = text.charAt(i);
      if (c === quote) return { value, after: text.slice(i + 1), lastLine: index };
      if (quote === '"' && c === '\\' && i + 1 < text.length) {
        const next = text.charAt(i + 1);
        value += DOUBLE_QUOTE_ESCAPES[next] ?? `\\${next}`;
        i += 1;
        continue;
      }
      value += c;
    }
    index += 1;
    if (index >= lines.length) {
      throw parseError(file, start + 1, `the value of ${key} opens a ${quote === '"' ? 'double' : 'single'} quote that is never closed; add the closing ${quote}`);
    }
    value += '\n';
    text = lines[index] ?? '';
  }
}

// An unquoted value ends at a `#` that follows a blank; surrounding blanks are not part of it.
function readUnquoted(raw: string): string {
  const comment = raw.search(/\s#/);
  return (comment < 0 ? raw : raw.slice(0, comment)).trim();
}

// Parse the text of `file` (named in errors) into its variables, sorted by key. Duplicate keys,
// invalid names and unterminated quotes are ENV_PARSE errors that never quote a value.
export function parseDotenv(text: string, file: string): EnvEntry[] {
  const lines = text.replace(/^\uFEFF/, '').split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  const seen = new Map<string, number>();
  const entries: EnvEntry[] = [];
  for (let index = 0; index < lines.length; index += 1) {
    const lineNo = index + 1;
    const line = (lines[index] ?? '').trimStart();
    if (line === '' || line.startsWith('#')) continue;
    const body = line.replace(/^export\s+/, '');
    const eq = body.indexOf('=');
    if (eq < 0) throw parseError(file, lineNo, 'is not of the form KEY=value; fix or remove the line (comments start with #)');
    const key = body.slice(0, eq).trim();
    if (!ENV_KEY_PATTERN.test(key)) {
      throw parseError(file, lineNo, 'the name before "=" is not a valid variable name (letters, digits and _, not starting with a digit)');
    }
    const earlier = seen.get(key);
    if (earlier !== undefined) throw parseError(file, lineNo, `${key} is already set on line ${earlier}; keep only one of them`);
    const raw = body.slice(eq + 1);
    const opened = raw.trimStart();
    const quote = opened.charAt(0);
    let value: string;
    if (quote === '"' || quote === "'") {
      const quoted = readQuoted(file, key, quote, lines, index, opened.slice(1));
      if (!AFTER_QUOTE.test(quoted.after)) {
        throw parseError(file, quoted.lastLine + 1, `the value of ${key} has text after its closing quote; put the whole value inside the quotes`);
      }
      value = quoted.value;
      index = quoted.lastLine;
    } else {
      value = readUnquoted(raw);
    }
    seen.set(key, lineNo);
    entries.push({ key, value });
  }
  return entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}
