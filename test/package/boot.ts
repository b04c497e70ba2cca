// A booted Debian root of a test's own with a .deb in /root: the cached root copied into a temp
// dir and booted under systemd-nspawn, stopped and removed when the test ends (the cleanup is
// registered before anything starts).
import type { TestContext } from 'node:test';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { bootContainer, type Container } from './container.ts';
import { copyRootfs, ensureRootfs } from './rootfs.ts';
import { defer } from '../helpers/cleanup.ts';

// Boot a fresh copy of the cached root with `deb` at /root/<its name>; `root` is its directory
// as the host sees it.
export async function bootWithDeb(t: TestContext, prefix: string, deb: string): Promise<{ root: string; c: Container }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  let container: Container | undefined;
  defer(t, async () => {
    await container?.stop();
    await rm(dir, { recursive: true, force: true });
  });
  const root = join(dir, 'root');
  await mkdir(root);
  await copyRootfs(await ensureRootfs((line) => t.diagnostic(line)), root);
  await copyFile(deb, join(root, 'root', basename(deb)));
  container = await bootContainer(root, 60_000);
  return { root, c: container };
}
