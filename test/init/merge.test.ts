import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeOperatorEdits } from '../../src/init/merge.ts';

const defaults = { a: 1, t: { x: 'default', y: [1, 2] }, enforced: { port: 1 } };

test('no file yet: defaults plus enforced keys, no warnings', () => {
  const r = mergeOperatorEdits('f.toml', defaults, undefined, [{ path: ['enforced', 'port'], value: 9 }]);
  assert.deepEqual(r, { doc: { a: 1, t: { x: 'default', y: [1, 2] }, enforced: { port: 9 } }, warnings: [], changed: true });
});

test('operator values and extra keys win; missing defaults are filled in', () => {
  const existing = { a: 5, t: { x: 'mine', z: true }, extra: { k: 'v' } };
  const r = mergeOperatorEdits('f.toml', defaults, existing, []);
  assert.deepEqual(r.doc, { a: 5, t: { x: 'mine', z: true, y: [1, 2] }, extra: { k: 'v' }, enforced: { port: 1 } });
  assert.equal(r.changed, true);
  assert.deepEqual(existing, { a: 5, t: { x: 'mine', z: true }, extra: { k: 'v' } }, 'input not mutated');
});

test('same content in another key order is not a change', () => {
  const existing = { enforced: { port: 9 }, t: { y: [1, 2], x: 'default' }, a: 1 };
  const r = mergeOperatorEdits('f.toml', defaults, existing, [{ path: ['enforced', 'port'], value: 9 }]);
  assert.equal(r.changed, false);
  assert.deepEqual(r.warnings, []);
});

test('an enforced key set differently is replaced with a warning that names it', () => {
  const existing = { a: 1, t: { x: 'default', y: [1, 2] }, enforced: { port: 2 } };
  const r = mergeOperatorEdits('f.toml', defaults, existing, [{ path: ['enforced', 'port'], value: 9 }]);
  assert.equal(r.changed, true);
  assert.equal(r.warnings.length, 1);
  assert.match(r.warnings[0] ?? '', /^f\.toml: key "enforced\.port" .* replacing 2 with 9/);
});

test('an enforced table path through a non-table value replaces it', () => {
  const r = mergeOperatorEdits('f.toml', {}, { cvm: 'oops' }, [{ path: ['cvm', 'kms_urls'], value: ['u'] }]);
  assert.deepEqual(r.doc, { cvm: { kms_urls: ['u'] } });
});
