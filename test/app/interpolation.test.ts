import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findReferences } from '../../src/app/interpolation.ts';

const CASES: [string, string[]][] = [
  ['no dollar', []],
  ['$VAR', ['VAR plain']],
  ['${VAR}', ['VAR plain']],
  ['pre-${A}-mid-$B_2.post', ['A plain', 'B_2 plain']],
  ['$$ and $${NOT} are escapes', []],
  ['$$$VAR', ['VAR plain']],
  ['${A:-default}', ['A fallback']],
  ['${A-default}', ['A fallback']],
  ['${A:+alt}', ['A fallback']],
  ['${A+alt}', ['A fallback']],
  ['${A:?need A}', ['A required:need A']],
  ['${A?}', ['A required:']],
  ['${A:-${B}}', ['A fallback', 'B plain']],
  ['${A:-${B:-${C}}}', ['A fallback', 'B fallback', 'C plain']],
  ['${A:?${B}}', ['A required:${B}', 'B plain']],
  ['$1 $- $ end $', []],
  ['${unclosed', []],
  ['${}', []],
  ['mysqladmin --password="$$(cat /run/secrets/db-password)"', []],
];

for (const [text, expected] of CASES) {
  test(`findReferences(${JSON.stringify(text)})`, () => {
    const found = findReferences(text).map((r) => `${r.name} ${r.kind}${r.kind === 'required' ? `:${r.message}` : ''}`);
    assert.deepEqual(found, expected);
  });
}
