import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { failNativeWatch } from '../../node_modules/chokidar/backend.js';
import { waitUntil } from '../helpers/harness.ts';
import { startWithApp } from '../helpers/rules.ts';
describe('probe', { concurrency: 3 }, () => {
  for (let i = 0; i < 9; i++) it(`enospc ${i}`, async (t) => {
    const { h } = await startWithApp(t);
    const seen: string[] = [];
    const dir = join(h.config.state_dir, 'status');
    const w = watch(dir, async (_e, f) => { if (f !== '_supervisor.json') return; try { const s = JSON.parse(await readFile(join(dir, f), 'utf8')); seen.push(`${new Date().toISOString().slice(17)} ${s.watcher} upd=${s.updated_at.slice(17)}`); } catch {} });
    t.after(() => w.close());
    const error = Object.assign(new Error(`ENOSPC: simulated`), { code: 'ENOSPC' });
    seen.push(`inject ${new Date().toISOString().slice(17)}`);
    assert.equal(await failNativeWatch(h.appsDir, error), true);
    try {
      await waitUntil(async () => (await h.supervisorStatus())?.watcher === 'degraded', 'degraded');
    } catch (e) {
      console.log('SEEN', [...new Set(seen)], h.logs.filter(l => l.priority <= 4 || /watch/.test(String(l.fields.msg))).map(l => [l.priority, l.fields.time, l.fields.msg]));
      throw e;
    }
  });
});
