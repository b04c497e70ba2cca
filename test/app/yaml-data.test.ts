// documentData replaces yaml's toJS (issue 13): it must give the same data for every file that
// is not refused, merges and anchors included, and refuse what cannot be data by name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { AppError } from '../../src/app/errors.ts';
import { parseCompose } from '../../src/app/parse.ts';
import { documentData } from '../../src/app/yaml-data.ts';

const FIXTURES = join(import.meta.dirname, '../fixtures');
const LIMITS = { expandedNodes: 100_000, depth: 64 };

// Both conversions of `text`, or undefined when either refuses it (a bomb, a duplicate key).
function bothData(text: string): { ours: unknown; yamls: unknown } | undefined {
  const docs = parseAllDocuments(text, { merge: true, prettyErrors: false, uniqueKeys: false });
  const doc = Array.isArray(docs) ? docs[0] : undefined;
  if (!doc || doc.errors.length > 0) return undefined;
  try {
    return { ours: documentData(doc, { file: 'f.yaml', at: () => ({ line: 1, column: 1 }), limits: LIMITS }), yamls: doc.toJS({ maxAliasCount: 100 }) };
  } catch {
    return undefined;
  }
}

test('every YAML file under test/fixtures converts to the data yaml\'s toJS gives', () => {
  const files = readdirSync(FIXTURES, { recursive: true, encoding: 'utf8' }).filter((f) => /\.ya?ml$/.test(f));
  let compared = 0;
  for (const file of files) {
    const both = bothData(readFileSync(join(FIXTURES, file), 'utf8'));
    if (!both) continue;
    assert.deepEqual(both.ours, both.yamls, file);
    compared += 1;
  }
  assert.ok(compared >= 90, `compared ${compared} files`);
});

test('merges, anchors and odd keys convert as yaml\'s toJS converts them', () => {
  const cases = [
    'b: &b {a: 1, b: 2}\nx: {<<: *b, b: 3}\ny: {b: 3, <<: *b}\n',
    'a: &a {k: 1}\nb: &b {k: 2, m: 2}\nx: {<<: [*a, *b]}\ny:\n  <<: *b\n  <<: *a\n',
    'a: &a {k: 1}\nb: &b {<<: *a, m: 2}\nx: {<<: *b, n: 3}\nl: &l [*a, *b]\ny: {<<: *l}\n',
    'a: &x 1\nb: *x\nc: &x 2\nd: *x\ne: &y [&y 3, *y]\nf: *y\n',
    '__proto__: {polluted: true}\ntoString: 1\nconstructor: {<<: {valueOf: 2}}\n',
    '1: a\ntrue: b\n~: c\n1.5: d\n0x10: e\n',
    'a: &k name\n*k : v\n? explicit\n: value\n',
    'a: 0o17\nb: .inf\nc: -.inf\nd: .nan\ne: 1e3\nf: "x"\ng: \'y\'\nh: |\n  lit\ni: >\n  fold\nj: null\nk: ~\nl:\nm: !!str 1\n',
    'a: &a {k: 1}\nb: {"<<": *a}\nc: [k: v, x]\nd: <<\n',
  ];
  for (const text of cases) {
    const both = bothData(text);
    assert.ok(both, text);
    assert.deepEqual(both.ours, both.yamls, text);
  }
});

test('aliases and merges that cannot be data are refused by name and line', () => {
  const refusals: Array<[string, RegExp, number]> = [
    ['a: 1\nb: *nope\n', /alias \*nope has no anchor &nope before it; define the anchor first/, 2],
    ['a: &self [1, *self]\n', /alias \*self is inside its own anchor &self, so it never ends/, 1],
    ['a: &s text\nb: {<<: *s}\n', /`<<` merges a mapping or a list of mappings, nothing else/, 2],
    ['a:\n  ? [x, y]\n  : z\n', /a mapping key must be a name or a number, not a mapping or a list/, 2],
  ];
  for (const [text, message, line] of refusals) {
    assert.throws(
      () => parseCompose('f.yaml', text),
      (err: unknown) => err instanceof AppError && err.code === 'APP_YAML' && message.test(err.message) && err.position?.line === line,
      text,
    );
  }
});
