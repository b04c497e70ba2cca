// Shared set-up for the init tests: a temp dir per test and an [init] section pointing into it.
import { createServer, type RequestListener } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { cp, mkdtemp, readdir, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { InitSectionSchema, type InitSection } from '../../src/init/config-schema.ts';
import { defer } from '../helpers/cleanup.ts';

// A fresh directory removed when the test ends.
export async function tempDir(t: TestContext, prefix = 'dstack-init-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  return dir;
}

// A copy of the recorded sysfs tree `name` (test/fixtures/sysfs/recorded) in which the functions at
// `addresses` are bound to vfio-pci instead, as an operator who followed init's advice has them.
export async function reboundRecording(t: TestContext, name: string, addresses: readonly string[]): Promise<string> {
  const root = await tempDir(t, 'dstack-sysfs-');
  await cp(join(import.meta.dirname, '../fixtures/sysfs/recorded', name), root, { recursive: true, verbatimSymlinks: true });
  for (const address of addresses) {
    const link = join(root, 'sys/bus/pci/devices', address, 'driver');
    await rm(link);
    await symlink('../../../../bus/pci/drivers/vfio-pci', link);
  }
  return root;
}

// An [init] section whose writable paths all live below `root` (the probes' sysroot is root/sysroot).
export function initIn(root: string, overrides: Record<string, unknown> = {}): InitSection {
  return InitSectionSchema.parse({
    sysroot: join(root, 'sysroot'),
    config_dir: join(root, 'etc'),
    data_dir: join(root, 'data'),
    run_dir: join(root, 'run'),
    images_dir: join(root, 'data', 'images'),
    ...overrides,
  });
}

// Every path below `dir` with its size, mode and mtime: equal snapshots mean nothing was written.
export async function snapshotTree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const full = join(d, entry.name);
      const s = await stat(full);
      out.set(full, `${s.size}:${s.mode}:${s.mtimeMs}`);
      if (entry.isDirectory()) await walk(full);
    }
  };
  await walk(dir);
  return out;
}

// An HTTP server on a free loopback port, closed (keep-alive sockets too) when the test ends.
export async function serveHttp(t: TestContext, handler: RequestListener): Promise<number> {
  const server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  defer(t, () => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as AddressInfo).port;
}
