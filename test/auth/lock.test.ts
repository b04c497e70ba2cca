import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireLock, lockPathFor } from '../../src/auth/lock.ts';
import { AuthError } from '../../src/auth/errors.ts';
import { waitForBlockedWaiter } from './proc-locks.ts';
import { defer } from '../helpers/cleanup.ts';

// Prints "held" once flock has run it (so the lock is held) and exits when stdin closes.
const HOLDER = "process.stdout.write('held\\n'); process.stdin.resume(); process.stdin.on('end', () => process.exit(0));";

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'auth-lock-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  return dir;
}

// An independent util-linux flock process holding `lockPath` around a program of ours.
function spawnFlockHolder(lockPath: string): ChildProcess {
  return spawn('flock', ['--exclusive', lockPath, process.execPath, '-e', HOLDER], { stdio: ['pipe', 'pipe', 'inherit'] });
}

async function waitForLine(child: ChildProcess, line: string): Promise<void> {
  let seen = '';
  for await (const chunk of child.stdout!) {
    seen += String(chunk);
    if (seen.split('\n').includes(line)) return;
  }
  throw new Error(`child ended before printing ${line}`);
}

// Exit code of a non-blocking probe: 0 if the lock was free, 1 if someone holds it.
async function probe(lockPath: string): Promise<number | null> {
  const child = spawn('flock', ['--nonblock', lockPath, 'true'], { stdio: 'ignore' });
  const [code] = (await once(child, 'exit')) as [number | null];
  return code;
}

test('lockPathFor appends .lock like upstream fsutil sibling()', () => {
  assert.equal(lockPathFor('/etc/dstack/auth-config.json'), '/etc/dstack/auth-config.json.lock');
});

test('waits while an independent flock process holds the lock, then holds it itself', async (t) => {
  const lockPath = join(await tempDir(t), 'auth-config.json.lock');
  const holder = spawnFlockHolder(lockPath);
  defer(t, () => holder.kill());
  await waitForLine(holder, 'held');

  let acquired = false;
  const acquiring = acquireLock(lockPath).then((lock) => {
    acquired = true;
    return lock;
  });
  await waitForBlockedWaiter(lockPath);
  assert.equal(acquired, false, 'must not get the lock while the other process holds it');

  const holderExit = once(holder, 'exit');
  holder.stdin!.end();
  await holderExit;
  const lock = await acquiring;
  assert.equal(await probe(lockPath), 1, 'the lock stays held after our flock child exited');
  await lock.release();
  assert.equal(await probe(lockPath), 0, 'closing the descriptor releases it');
});

test('an independent flock process waits while we hold the lock', async (t) => {
  const lockPath = join(await tempDir(t), 'auth-config.json.lock');
  const lock = await acquireLock(lockPath);
  const other = spawnFlockHolder(lockPath);
  defer(t, () => other.kill());
  let otherHeld = false;
  const otherHolding = waitForLine(other, 'held').then(() => (otherHeld = true));

  await waitForBlockedWaiter(lockPath);
  assert.equal(otherHeld, false);
  await lock.release();
  await otherHolding;
  const otherExit = once(other, 'exit');
  other.stdin!.end();
  assert.deepEqual(await otherExit, [0, null]);
});

test('creates the lock file with mode 0600', async (t) => {
  const lockPath = join(await tempDir(t), 'x.lock');
  const lock = await acquireLock(lockPath);
  defer(t, () => lock.release());
  assert.equal((await stat(lockPath)).mode & 0o777, 0o600);
});

test('gives up with AUTH_LOCK_TIMEOUT when the holder does not let go', async (t) => {
  const lockPath = join(await tempDir(t), 'x.lock');
  const lock = await acquireLock(lockPath);
  defer(t, () => lock.release());
  await assert.rejects(acquireLock(lockPath, { timeoutMs: 100 }), (err: unknown) => {
    assert.ok(err instanceof AuthError);
    assert.equal(err.code, 'AUTH_LOCK_TIMEOUT');
    assert.match(err.message, /x\.lock/);
    return true;
  });
});

test('reports AUTH_LOCK when flock cannot run or the directory is missing', async (t) => {
  const dir = await tempDir(t);
  for (const [lockPath, flockPath] of [
    [join(dir, 'x.lock'), join(dir, 'no-such-flock')],
    [join(dir, 'missing', 'x.lock'), 'flock'],
  ] as const) {
    await assert.rejects(acquireLock(lockPath, { flockPath }), { code: 'AUTH_LOCK' });
  }
});
