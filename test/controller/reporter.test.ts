import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createReporter } from '../../src/controller/reporter.ts';
import { createLogger } from '../../src/log/logger.ts';
import { createRepeatSummariser } from '../../src/log/repeat.ts';
import { readAllStatuses, removeAppStatus, statusDir, writeAppStatus } from '../../src/status/store.ts';
import { openEnvDigester } from '../../src/status/env-digest.ts';
import type { AppRecord } from '../../src/state/record.ts';
import { collectLines } from '../log/collect.ts';
import { PHASES } from '../../src/status/phase.ts';
import { defer } from '../helpers/cleanup.ts';

async function stage(t: { after: (fn: () => Promise<void>) => void }) {
  const dir = await mkdtemp(join(tmpdir(), 'reporter-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  const collected = collectLines();
  const log = createLogger({ level: 'debug', stream: collected.stream });
  const summaries: string[] = [];
  const open = async () =>
    createReporter({
      initial: (await readAllStatuses(dir)).apps,
      log,
      repeats: createRepeatSummariser({ log, clock: { now: () => 0 } }),
      write: (s) => writeAppStatus(dir, s),
      remove: (app) => removeAppStatus(dir, app),
      summary: (line) => summaries.push(line),
      now: () => 0,
      envDigest: await openEnvDigester(join(dir, 'state')),
    });
  const phaseLines = () => collected.lines.filter((l) => l.fields.PHASE !== undefined).map((l) => [l.fields.msg, l.fields.FILE]);
  return { dir, open, summaries, phaseLines, lines: collected.lines };
}

test('issue 13: a refused app that leaves as gone takes its status file and count with it, and says "invalid -> gone"', async (t) => {
  const s = await stage(t);
  const reporter = await s.open();
  const held = { action: 'invalid' as const, reason: 'not YAML', fileHash: 'a'.repeat(64) };
  await reporter.update({ app: 'bad', file: '/etc/dstack/apps.d/bad.yml', phase: 'invalid', error: 'not YAML', held });
  assert.equal(s.summaries.at(-1), 'running 0, pending 0, invalid 1, failed 0');
  await reporter.update({ app: 'bad', file: 'bad', phase: 'gone' });
  assert.deepEqual(reporter.statuses(), []);
  assert.deepEqual(await readdir(statusDir(s.dir)), []);
  assert.equal(s.summaries.at(-1), 'running 0, pending 0, invalid 0, failed 0');
  assert.deepEqual(s.phaseLines(), [
    ['bad: new -> invalid', '/etc/dstack/apps.d/bad.yml'],
    ['bad: invalid -> gone', '/etc/dstack/apps.d/bad.yml'],
  ]);
});

test('issue 13: a status the last run left is known to the next reporter, so its departure is said too', async (t) => {
  const s = await stage(t);
  await (await s.open()).update({ app: 'ghost', file: '/etc/dstack/apps.d/ghost.yml', phase: 'invalid', error: 'not YAML' });
  const next = await s.open();
  assert.deepEqual(next.statuses().map((st) => [st.app, st.phase]), [['ghost', 'invalid']]);
  await next.update({ app: 'ghost', file: 'ghost', phase: 'gone' });
  assert.deepEqual((await readAllStatuses(s.dir)).apps, []);
  assert.deepEqual(s.phaseLines().at(-1), ['ghost: invalid -> gone', '/etc/dstack/apps.d/ghost.yml']);
});

test('issue 15: a status carries the code of its error, keeps it while the app waits and drops it once it runs', async (t) => {
  const s = await stage(t);
  const reporter = await s.open();
  const file = '/etc/dstack/apps.d/web.yml';
  const read = async () => (await readAllStatuses(s.dir)).apps.map((st) => [st.phase, st.code, st.last_error]);
  await reporter.update({ app: 'web', file, phase: 'failed', error: 'dstack-vmm is down', code: 'VMM_UNREACHABLE' });
  assert.deepEqual(await read(), [['failed', 'VMM_UNREACHABLE', 'dstack-vmm is down']]);
  // Same message, another code: still a change worth writing.
  await reporter.update({ app: 'web', file, phase: 'failed', error: 'dstack-vmm is down', code: 'VMM_TIMEOUT' });
  assert.deepEqual(await read(), [['failed', 'VMM_TIMEOUT', 'dstack-vmm is down']]);
  await reporter.update({ app: 'web', file, phase: 'deploying' });
  assert.deepEqual(await read(), [['deploying', 'VMM_TIMEOUT', 'dstack-vmm is down']], 'the last error stays until the app runs');
  await reporter.update({ app: 'web', file, phase: 'running' });
  assert.deepEqual(await read(), [['running', null, null]]);
});

test('issue 15: a phase line carries the app\'s VM, hash prefix and error code as fields', async (t) => {
  const s = await stage(t);
  const file = '/etc/dstack/apps.d/web.yml';
  await (await s.open()).update({ app: 'web', file, phase: 'running' });
  const { apps } = await readAllStatuses(s.dir);
  await writeAppStatus(s.dir, { ...apps[0]!, vm_id: 'vm-1', compose_hash: 'c'.repeat(64) });
  await (await s.open()).update({ app: 'web', file, phase: 'failed', error: 'dstack-vmm is down', code: 'VMM_UNREACHABLE' });
  const line = s.lines.at(-1)!.fields;
  assert.deepEqual([line.msg, line.PHASE, line.VM, line.HASH, line.CODE], ['web: running -> failed', 'failed', 'vm-1', 'cccccccccccc', 'VMM_UNREACHABLE']);
});

test('issue 15: a status file written before `code` existed is still read, and its app starts without one', async (t) => {
  const s = await stage(t);
  const reporter = await s.open();
  await reporter.update({ app: 'old', file: '/etc/dstack/apps.d/old.yml', phase: 'failed', error: 'boom', code: 'VM_BOOT_FAILED' });
  const { code: _code, ...before } = (await readAllStatuses(s.dir)).apps[0]!;
  await writeAppStatus(s.dir, before);
  const next = await s.open();
  assert.deepEqual(next.statuses().map((st) => [st.app, st.last_error, st.code]), [['old', 'boom', undefined]]);
  await next.update({ app: 'old', file: '/etc/dstack/apps.d/old.yml', phase: 'failed', error: 'boom', code: 'VM_BOOT_FAILED' });
  assert.equal((await readAllStatuses(s.dir)).apps[0]?.code, 'VM_BOOT_FAILED', 'a code where there was none is written');
});

// Issue 17: a change of env values alone keeps phase and compose hash; the status must still move,
// or a tool waiting for the new values sees nothing happen.
test('issue 17: env_digest follows the record\'s envHash, keyed, and a new one alone rewrites the status', async (t) => {
  const s = await stage(t);
  const reporter = await s.open();
  const file = '/etc/dstack/apps.d/shop.yaml';
  const record = (envHash?: string): AppRecord => ({ name: 'shop', file, appId: 'a'.repeat(40), vmId: 'vm-1', phase: 'running', appliedHash: 'b'.repeat(64), registeredHashes: ['b'.repeat(64)], envHash });
  const digest = async () => (await readAllStatuses(s.dir)).apps[0]?.env_digest;
  await reporter.update({ app: 'shop', file, phase: 'running', record: record() });
  assert.equal(await digest(), null, 'no NAME.env: null');
  await reporter.update({ app: 'shop', file, phase: 'running', record: record('1'.repeat(64)) });
  const one = await digest();
  assert.match(one ?? '', /^[0-9a-f]{64}$/);
  assert.notEqual(one, '1'.repeat(64), 'never the record\'s plain hash');
  await reporter.update({ app: 'shop', file, phase: 'running', record: record('2'.repeat(64)) });
  const two = await digest();
  assert.ok(two && two !== one, 'same phase and hash, new values: a new status');
  // A held file (no record in the update) keeps what the VM was given.
  await reporter.update({ app: 'shop', file, phase: 'invalid', error: 'bad', code: 'APP_YAML' });
  assert.equal(await digest(), two);
});

// Issue 18: the summary's counts are kept as statuses change, not counted again each time.
test('the STATUS= summary and the counts count what the statuses say after every change, with statuses the last run left', async (t) => {
  const s = await stage(t);
  await (await s.open()).update({ app: 'left', file: 'left.yml', phase: 'failed', error: 'boom' });
  const reporter = await s.open();
  const phases = ['pending', 'registering', 'deploying', 'running', 'updating', 'deleting', 'removing', 'failed', 'invalid', 'gone', 'removed'] as const;
  let seed = 7;
  const next = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  for (let i = 0; i < 80; i++) {
    const app = ['left', 'a', 'b', 'c'][next(4)] as string;
    const phase = phases[next(phases.length)] as (typeof phases)[number];
    await reporter.update({ app, file: `${app}.yml`, phase, ...(phase === 'failed' || phase === 'invalid' ? { error: `e${i}` } : {}) });
    const counted = Object.fromEntries(PHASES.map((p) => [p, reporter.statuses().filter((st) => st.phase === p).length]));
    assert.deepEqual(reporter.counts(), counted, `the counts the supervisor's status file takes, after step ${i}`);
    const expected = ['running', 'pending', 'invalid', 'failed'].map((p) => `${p} ${reporter.statuses().filter((st) => st.phase === p).length}`);
    assert.equal(reporter.line().split(', ').slice(0, 4).join(', '), expected.join(', '), `after step ${i}`);
    for (const busy of ['registering', 'deploying', 'updating', 'deleting', 'removing']) {
      const n = reporter.statuses().filter((st) => st.phase === busy).length;
      assert.equal(reporter.line().includes(`${busy} `), n > 0, `${busy} after step ${i}`);
      if (n > 0) assert.ok(reporter.line().includes(`${busy} ${n}`), `${busy} ${n} after step ${i}`);
    }
  }
});
