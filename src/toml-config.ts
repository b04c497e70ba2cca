// What the TOML files an operator writes (supervisor.toml, gateway.d/gateway.toml) share: parsing,
// naming a key the way it appears in the file, and the CVM size keys. Both files report a problem
// as `<key>: <problem>`, so an operator reads the same kind of message whichever file is wrong.
import { parse as parseToml, TomlError } from 'smol-toml';
import * as z from 'zod';
import { CVM_LIMITS, type SizeKey } from './app/limits.ts';

// A parsed document, or where and why it is not TOML.
export type TomlParse = { ok: true; value: unknown } | { ok: false; line: number; column: number; problem: string; cause: TomlError };

// Parse TOML text; only a syntax error is returned, anything else thrown.
export function parseTomlText(text: string): TomlParse {
  try {
    return { ok: true, value: parseToml(text) };
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    // The first line is the reason; the rest is an excerpt of the file, which a one-line message leaves out.
    const what = (err.message.split('\n')[0] ?? '').replace(/^Invalid TOML document: /, '');
    return { ok: false, line: err.line, column: err.column, problem: `not valid TOML: ${what}`, cause: err };
  }
}

// A default CVM size in the VMM's unit, held to the ceiling an x-dstack override is held to.
export function cvmSize(key: SizeKey) {
  const { max, unit } = CVM_LIMITS[key];
  const whole = `must be a whole number of ${unit} from 1 to ${max}`;
  return z.number({ error: whole }).int({ error: whole }).positive({ error: whole }).max(max, `must be at most ${max} ${unit}, the most a CVM can have`);
}

// `[apps] settle_ms`, `apps_dir`, `[apps] kms_urls[0]`: the key as an operator finds it in the
// file; `sections` are the file's tables.
export function formatKey(keyPath: readonly PropertyKey[], sections: ReadonlySet<string>): string {
  const [head, ...rest] = keyPath.map(String);
  if (head === undefined) return '(top level)';
  const tail = rest.map((k, i) => (/^\d+$/.test(k) ? `[${k}]` : `${i === 0 ? '' : '.'}${k}`)).join('');
  if (sections.has(head)) return tail === '' ? `[${head}]` : `[${head}] ${tail}`;
  return `${head}${tail}`;
}

// One `<key>: <problem>` line per zod issue (one per key for unknown keys, which get `unknownKeyFix`).
export function describeIssues(issues: readonly z.core.$ZodIssue[], sections: ReadonlySet<string>, unknownKeyFix: string): string[] {
  return issues.flatMap((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((k) => `${formatKey([...issue.path, k], sections)}: unknown key; ${unknownKeyFix}`);
    }
    return [`${formatKey(issue.path, sections)}: ${issue.message}`];
  });
}
