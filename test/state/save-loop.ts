// Child process for the kill -9 test: saves ever newer records for two apps and removes and
// re-creates a third, as fast as it can, until it is killed. Prints "ready" after the first round.
import { createHash } from 'node:crypto';
import { openStateStore } from '../../src/state/store.ts';

const dir = process.argv[2];
if (dir === undefined) throw new Error('usage: save-loop.ts STATE_DIR');
const store = await openStateStore(dir);
const start = (await store.load('web'))?.intent?.startedAt ?? 0;
const hashOf = (i: number) => createHash('sha256').update(String(i)).digest('hex');

for (let i = start + 1; ; i += 1) {
  for (const name of ['web', 'api']) {
    await store.save({
      name,
      file: `${name}.yml`,
      appId: hashOf(0).slice(0, 40),
      phase: 'deploying',
      registeredHashes: [hashOf(i)],
      // Records of varying size, so a torn write could not pass for a whole one.
      lastError: 'x'.repeat((i * 997) % 20_000),
      intent: { op: 'deploy', toHash: hashOf(i), startedAt: i },
    });
  }
  await store.remove('tmp');
  await store.save({ name: 'tmp', file: 'tmp.yml', appId: 'x', phase: 'pending', registeredHashes: [] });
  if (i === start + 1) process.stdout.write('ready\n');
}
