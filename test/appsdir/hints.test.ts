import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createChangeHints } from '../../src/appsdir/hints.ts';

test('hints name what the next event pass looks at; an unnamed event or a full pass means everything', () => {
  const hints = createChangeHints();
  hints.add(['a.yml']);
  hints.add(['b.env', 'a.yml']);
  assert.deepEqual(hints.take(false), { all: false, names: new Set(['a.yml', 'b.env']) });
  assert.deepEqual(hints.take(false), { all: false, names: new Set() }, 'taken: the next pass starts afresh');
  hints.add(['a.yml']);
  hints.add(undefined);
  assert.deepEqual(hints.take(false), { all: true });
  hints.add(['a.yml']);
  assert.deepEqual(hints.take(true), { all: true });
  assert.deepEqual(hints.take(false), { all: false, names: new Set() }, 'a full pass takes the names too');
});
