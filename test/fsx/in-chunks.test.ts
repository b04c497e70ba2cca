import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inChunks } from '../../src/fsx/in-chunks.ts';

test('inChunks runs 64 items at a time, each chunk only after its pace', { timeout: 10_000 }, async () => {
  const events: string[] = [];
  let running = 0;
  let most = 0;
  const items = Array.from({ length: 130 }, (_, i) => i);
  await inChunks(
    items,
    async (i) => {
      running += 1;
      most = Math.max(most, running);
      await new Promise((r) => setImmediate(r));
      running -= 1;
      if (i % 64 === 0) events.push(`item ${i}`);
    },
    async () => {
      events.push('pace');
      await new Promise((r) => setImmediate(r));
    },
  );
  assert.equal(most, 64);
  assert.deepEqual(events, ['pace', 'item 0', 'pace', 'item 64', 'pace', 'item 128']);
});
