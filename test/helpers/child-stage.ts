// A simulated host in a fresh temp dir, for tests that run `dstack-supervisor run` as a real child
// process: apps.d, the simulator's dir, a seeded auth-config.json, and the supervisor.toml lines
// that point `run` at them (init off). Removed, simulator stopped, when the test ends.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSimHost, type SimHost, type SimHostOptions } from '../../src/sim/host.ts';
import { seedSimAuthConfig } from '../../src/sim/seed.ts';
import { defer } from './cleanup.ts';

type TestContext = { after: (fn: () => Promise<void>) => void };

export type SimDir = { dir: string; appsDir: string; authPath: string; sim: SimHost };

// Build the directory and start the simulator (`sim` adds to or replaces its options).
export async function startSimDir(t: TestContext, prefix: string, sim: Partial<SimHostOptions> = {}): Promise<SimDir> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  const appsDir = join(dir, 'apps.d');
  await mkdir(appsDir, { mode: 0o755 });
  await mkdir(join(dir, 'sim'));
  const authPath = join(dir, 'auth-config.json');
  await seedSimAuthConfig(authPath);
  const host = await startSimHost({ dir: join(dir, 'sim'), authConfigPath: authPath, kmsUrls: ['https://10.0.2.2:12001'], ...sim });
  defer(t, () => host.stop());
  return { dir, appsDir, authPath, sim: host };
}

// supervisor.toml for `run` on `stage` (state in dir/state); `apps` are the [apps] lines, the
// owner of apps.d files (this user) added.
export function childConfigToml(stage: SimDir, apps: string[]): string {
  return [
    `apps_dir = "${stage.appsDir}"`,
    `state_dir = "${join(stage.dir, 'state')}"`,
    `[vmm]\nurl = "${stage.sim.vmmUrl}"\ntoken_file = ""`,
    `[auth]\nconfig_path = "${stage.authPath}"`,
    `[init]\nenabled = false`,
    `[gateway]\ndns_servers = ["${stage.sim.dns.server}"]`,
    ['[apps]', ...apps, `owner = ${process.getuid?.() ?? 0}`].join('\n'),
  ].join('\n');
}
