// Issue 13 item 6: the VMM token file is held to StrictModes. Every case runs the real client
// against a fake VMM on a unix socket, with real files, links and FIFOs; a refused token file
// sends nothing.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { constants } from 'node:fs';
import { chmod, chown, open, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { createVmmClient } from '../../src/vmm/client.ts';
import { VmmError } from '../../src/vmm/errors.ts';
import { startFakeVmm, type FakeVmm } from './fake-vmm.ts';
import { defer } from '../helpers/cleanup.ts';

const TOKEN = 'tok-3c9a1f-do-not-leak';

// A fake VMM that answers every call, and a client reading `tokenFile` inside the fake's dir.
async function setup(t: TestContext): Promise<{ vmm: FakeVmm; tokenFile: string; version: () => Promise<unknown> }> {
  const vmm = await startFakeVmm(t, () => ({ reply: {} }));
  const tokenFile = join(vmm.dir, 'vmm-auth-token');
  const client = createVmmClient({ url: vmm.url, tokenFile });
  defer(t, () => client.close());
  return { vmm, tokenFile, version: () => client.version() };
}

// The call's rejection, which must be a VmmError with `code` whose message names the file and
// carries no token; settles within `withinMs` or fails (a read that hangs is the bug).
async function refusal(call: Promise<unknown>, code: string, tokenFile: string, withinMs = 5000): Promise<VmmError> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the call did not settle within ${withinMs} ms`)), withinMs);
  });
  try {
    const err = await Promise.race([call.then(() => assert.fail(`expected ${code}`), (e: unknown) => e), deadline]);
    assert.ok(err instanceof VmmError, String(err));
    assert.equal(err.code, code, err.message);
    assert.ok(err.message.includes(tokenFile), err.message);
    assert.ok(!err.message.includes(TOKEN), 'no message holds the token');
    return err;
  } finally {
    clearTimeout(timer);
  }
}

test('a 0600 or 0400 token file of our own uid is sent as the bearer token', async (t) => {
  const { vmm, tokenFile, version } = await setup(t);
  await writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  await version();
  await chmod(tokenFile, 0o400);
  await version();
  assert.deepEqual(vmm.seen.map((r) => r.headers.authorization), [`Bearer ${TOKEN}`, `Bearer ${TOKEN}`]);
});

test('a missing token file still means: send no token', async (t) => {
  const { vmm, version } = await setup(t);
  await version();
  assert.equal(vmm.seen[0]?.headers.authorization, undefined);
});

test('a symlink as token file is VMM_TOKEN_UNSAFE, even to a good file, and nothing is sent', async (t) => {
  const { vmm, tokenFile, version } = await setup(t);
  const real = join(vmm.dir, 'real-token');
  await writeFile(real, TOKEN, { mode: 0o600 });
  await symlink(real, tokenFile);
  const err = await refusal(version(), 'VMM_TOKEN_UNSAFE', tokenFile);
  assert.match(err.message, /is a symlink.*cp --remove-destination/);
  assert.equal(vmm.seen.length, 0);
});

test('a FIFO as token file is refused at once; the call does not hang waiting for a writer', { timeout: 20_000 }, async (t) => {
  const { vmm, tokenFile, version } = await setup(t);
  execFileSync('mkfifo', ['-m', '600', tokenFile]);
  // Before the fix a blocking open() of the FIFO holds a thread-pool thread forever: open the
  // writing end once the test is over, so such a reader gets EOF and the process can exit.
  defer(t, async () => {
    const writer = await open(tokenFile, constants.O_WRONLY | constants.O_NONBLOCK).catch(() => undefined);
    await writer?.close();
  });
  const err = await refusal(version(), 'VMM_TOKEN_UNSAFE', tokenFile);
  assert.match(err.message, /is a named pipe/);
  assert.equal(vmm.seen.length, 0);
});

for (const mode of [0o640, 0o604, 0o620, 0o644]) {
  test(`a token file with mode ${mode.toString(8).padStart(4, '0')} is VMM_TOKEN_UNSAFE with the chmod fix`, async (t) => {
    const { vmm, tokenFile, version } = await setup(t);
    await writeFile(tokenFile, TOKEN);
    await chmod(tokenFile, mode);
    const err = await refusal(version(), 'VMM_TOKEN_UNSAFE', tokenFile);
    assert.ok(err.message.includes(`has mode ${mode.toString(8).padStart(4, '0')}`), err.message);
    assert.ok(err.message.includes(`run: chmod 600 ${tokenFile}`), err.message);
    assert.equal(vmm.seen.length, 0);
  });
}

test('a token file over 4096 bytes is VMM_TOKEN_FILE and nothing is sent', async (t) => {
  const { vmm, tokenFile, version } = await setup(t);
  await writeFile(tokenFile, 'x'.repeat(4097), { mode: 0o600 });
  const err = await refusal(version(), 'VMM_TOKEN_FILE', tokenFile);
  assert.match(err.message, /over 4096 bytes/);
  assert.equal(vmm.seen.length, 0);
});

test('a token file owned by another uid is VMM_TOKEN_UNSAFE with the chown fix', { skip: process.getuid?.() !== 0 && 'needs root to chown' }, async (t) => {
  const { vmm, tokenFile, version } = await setup(t);
  await writeFile(tokenFile, TOKEN, { mode: 0o600 });
  await chown(tokenFile, 4242, -1);
  const err = await refusal(version(), 'VMM_TOKEN_UNSAFE', tokenFile);
  assert.ok(err.message.includes(`is owned by uid 4242, not by the supervisor's uid 0`), err.message);
  assert.ok(err.message.includes(`run: chown 0 ${tokenFile}`), err.message);
  assert.equal(vmm.seen.length, 0);
});
