import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { failNativeWatch } from '../../node_modules/chokidar/backend.js';
import { waitUntil } from '../helpers/harness.ts';
import { startWithApp } from '../helpers/rules.ts';
describe('probe', { concurrency: 3 }, () => {
  for (let i = 0; i < 9; i++) it(`enospc ${i}`, async (t) => {
    const { h } = await startWithApp(t);
    const error = Object.assign(new Error(`ENOSPC: simulated`), { code: 'ENOSPC' });
    const t0 = Date.now();
    assert.equal(await failNativeWatch(h.appsDir, error), true);
    const seen: string[] = [];
    try {
      await waitUntil(async () => { const w = (await h.supervisorStatus())?.watcher; if (seen.at(-1) !== w) seen.push(`${Date.now()-t0}:${w}`); return w === 'degraded'; }, 'degraded');
    } catch (e) {
      console.log('SEEN', seen, h.logs.filter(l => l.priority <= 4 || /watch/.test(String(l.fields.msg))).map(l => [l.priority, l.fields.time, l.fields.msg]));
      throw e;
    }
  });
});
