// The soak's op list: the same for a seed, and it exercises what issue 13 says the soak missed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateOps } from './generate.ts';

test('a seed gives the same op list every time; another seed another one', () => {
  assert.deepEqual(generateOps(7, 300), generateOps(7, 300));
  assert.notDeepEqual(generateOps(7, 300), generateOps(8, 300));
});

test('300 ops write, change and delete NAME.env (bad modes too), hard-link, edit auth-config.json and corrupt records', () => {
  const ops = generateOps(5, 300);
  const kinds = new Set(ops.map((op) => (op.kind === 'auth' || op.kind === 'record' ? `${op.kind}:${op.edit}` : op.kind)));
  for (const kind of ['env', 'env-delete', 'env-chmod', 'link', 'auth:add-foreign', 'auth:drop', 'auth:tamper', 'record:garbage', 'record:move-aside']) {
    assert.ok(kinds.has(kind), `no ${kind} op`);
  }
  const env = ops.filter((op) => op.kind === 'env');
  assert.ok(env.some((op) => op.mode === 0o644), 'no env file with a mode to refuse');
  assert.ok(new Set(env.map((op) => op.keys.join(','))).size > 1, 'the key sets never change');
});

test('nothing in the soak draws from Math.random: a seed decides', async () => {
  const dir = import.meta.dirname;
  for (const file of (await readdir(dir)).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))) {
    assert.doesNotMatch(await readFile(join(dir, file), 'utf8'), /Math\.random/, file);
  }
});
