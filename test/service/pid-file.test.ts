// Issue 15: how `dstack-supervisor resync` finds the service, and never a stranger.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findServicePid, pidFilePath, removePidFile, writePidFile } from '../../src/service/pid-file.ts';
import { defer } from '../helpers/cleanup.ts';

async function stateDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pid-file-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  return join(dir, 'state');
}

test('issue 15: the pid file finds the live process that wrote it, and is removed by it only', async (t) => {
  const dir = await stateDir(t);
  assert.match((await findServicePid(dir) as { none: string }).none, /pid\.json does not exist/);
  await writePidFile(dir);
  assert.deepEqual(await findServicePid(dir), { pid: process.pid });
  const recorded = JSON.parse(await readFile(pidFilePath(dir), 'utf8')) as Record<string, unknown>;
  // Another process's file (a later `run`) is left alone.
  await writeFile(pidFilePath(dir), JSON.stringify({ ...recorded, pid: process.pid + 1 }));
  await removePidFile(dir);
  assert.ok(JSON.parse(await readFile(pidFilePath(dir), 'utf8')).pid === process.pid + 1);
  await writeFile(pidFilePath(dir), JSON.stringify(recorded));
  await removePidFile(dir);
  await assert.rejects(readFile(pidFilePath(dir)), { code: 'ENOENT' });
});

test('issue 15: a pid file whose process is gone, or whose PID now belongs to another process, names nobody', async (t) => {
  const dir = await stateDir(t);
  await writePidFile(dir);
  const recorded = JSON.parse(await readFile(pidFilePath(dir), 'utf8')) as { pid: number; start_time: string };
  // The same PID started at another time: what a PID reused after a kill -9 looks like.
  await writeFile(pidFilePath(dir), JSON.stringify({ ...recorded, start_time: '1' }));
  assert.match((await findServicePid(dir) as { none: string }).none, new RegExp(`names process ${process.pid}, which is no longer running`));
  const child = spawn(process.execPath, ['-e', '']);
  await once(child, 'exit');
  await writeFile(pidFilePath(dir), JSON.stringify({ ...recorded, pid: child.pid }));
  assert.match((await findServicePid(dir) as { none: string }).none, /no longer running/);
  await writeFile(pidFilePath(dir), 'garbage');
  assert.match((await findServicePid(dir) as { none: string }).none, /pid\.json cannot be used/);
});
