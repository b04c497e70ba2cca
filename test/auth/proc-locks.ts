// Test helper: observe flock(2) waiters through /proc/locks instead of guessing with delays.
import { readFile, stat } from 'node:fs/promises';

// The kernel lists a process blocked in flock(2) as a "->" line in /proc/locks; resolve once one
// is blocked on this file's inode, i.e. on the event "someone is now waiting for the lock".
export async function waitForBlockedWaiter(lockPath: string, timeoutMs = 5_000): Promise<void> {
  const { ino } = await stat(lockPath);
  const deadline = Date.now() + timeoutMs;
  const pattern = new RegExp(`->\\s+FLOCK\\s+ADVISORY\\s+WRITE\\s+\\d+\\s+[0-9a-f]+:[0-9a-f]+:${ino}\\s`);
  while (!pattern.test(await readFile('/proc/locks', 'utf8'))) {
    if (Date.now() > deadline) throw new Error(`no process blocked on ${lockPath} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
