// Issue 13, item 7: a file that was refused (never deployed, so no state record) and then deleted
// leaves no status behind: not its file in the status directory, not its row in `status`, not its
// count in STATUS= / _supervisor.json, and not after a restart either. The journal says it went.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startHarness, composeText, freePorts, waitUntil, type Harness } from '../helpers/harness.ts';
import { startWithApp } from '../helpers/rules.ts';
import { statusDir } from '../../src/status/store.ts';

const phaseLines = (h: Harness, app: string) => h.logs.filter((l) => l.fields.APP === app && l.fields.PHASE !== undefined).map((l) => l.fields.msg);
const apps = async (h: Harness) => (await h.statuses()).map((s) => s.app).sort();

test('issue 13: an invalid or refused file that is deleted takes its status, row and count with it; the journal says "invalid -> gone"', { timeout: 60_000 }, async (t) => {
  const h = await startHarness(t);
  const [port] = await freePorts(1);
  await h.put('web.yml', composeText(port!));
  await h.start();
  await h.deployed('web');
  await h.put('bad.yml', 'services: [not, a, mapping\n');
  await h.put('loose.yml', composeText(port!, 'loose'));
  await chmod(h.path('loose.yml'), 0o666);
  await waitUntil(async () => (await h.supervisorStatus())?.counts.invalid === 2, 'both files counted invalid');
  assert.deepEqual(await apps(h), ['bad', 'loose', 'web']);

  await rm(h.path('bad.yml'));
  await rm(h.path('loose.yml'));
  await waitUntil(async () => (await apps(h)).join() === 'web', 'the status files of the deleted files gone');
  await waitUntil(async () => (await h.supervisorStatus())?.counts.invalid === 0, '_supervisor.json counts without them');
  await h.quiesce();
  assert.equal((await h.supervisorStatus())?.counts.running, 1);
  assert.deepEqual(phaseLines(h, 'bad').slice(-1), ['bad: invalid -> gone']);
  assert.deepEqual(phaseLines(h, 'loose').slice(-1), ['loose: invalid -> gone']);
  assert.deepEqual(h.mutations().filter((m) => m !== 'CreateVm'), [], 'nothing was torn down for them');
});

test('issue 13: a status file left by a ghost while the supervisor was down is removed at start-up', { timeout: 60_000 }, async (t) => {
  const { h, vm: web } = await startWithApp(t, {}, 'web');
  await h.stop();
  // What a run that saw ghost.yml invalid left, with ghost.yml deleted while nobody watched.
  const ghost = {
    app: 'ghost',
    file: h.path('ghost.yml'),
    phase: 'invalid',
    app_id: null,
    vm_id: null,
    compose_hash: null,
    urls: [],
    last_error: 'not YAML',
    warnings: [],
    updated_at: new Date().toISOString(),
  };
  await writeFile(join(statusDir(h.config.state_dir), 'ghost.json'), JSON.stringify(ghost));

  await h.start();
  await waitUntil(async () => (await apps(h)).join() === 'web', 'the ghost status file removed');
  await waitUntil(async () => {
    const counts = (await h.supervisorStatus())?.counts;
    return counts?.invalid === 0 && counts.running === 1;
  }, '_supervisor.json counts without the ghost');
  assert.deepEqual(phaseLines(h, 'ghost'), ['ghost: invalid -> gone']);
  assert.deepEqual((await h.statuses()).map((s) => [s.app, s.phase, s.vm_id]), [['web', 'running', web.id]], 'the app with a file keeps its status');
});
