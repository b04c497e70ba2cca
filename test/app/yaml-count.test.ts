// The node count that refuses a file before yaml builds its tree (issue 13): every key, value
// and list item counts, nothing else does, and the answer is where the limit was passed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findNodeOverflow } from '../../src/app/yaml-count.ts';

test('keys, values and list items count; comments, spaces, anchors and tags do not', () => {
  const rows: Array<[string, number]> = [
    // a, :, 1
    ['a: 1\n', 3],
    // a, :, [, 1, 2 (an empty value counts by its `:`)
    ['a: [1, 2]\nb:\n', 7],
    // -, x, -, "y", -, 'z'
    ['- x\n- "y"\n- \'z\'\n', 6],
    // a, :, {, b, :, *x (the anchor and tag are no nodes of their own)
    ['# comment\na: &x !!map {b: *x}\n', 6],
    // a, :, block scalar
    ['a: |\n  one\n  two\n', 3],
  ];
  for (const [text, nodes] of rows) {
    assert.equal(findNodeOverflow(text, nodes), undefined, `${JSON.stringify(text)} has ${nodes} nodes`);
    assert.notEqual(findNodeOverflow(text, nodes - 1), undefined, `${JSON.stringify(text)} has more than ${nodes - 1}`);
  }
});

test('the answer is the offset of the node past the limit', () => {
  const text = '\uFEFFa: 1\nb: "two"\n';
  assert.equal(findNodeOverflow(text, 4), text.indexOf('"two"') - 2);
  assert.equal(findNodeOverflow(text, 5), text.indexOf('"two"'));
});
