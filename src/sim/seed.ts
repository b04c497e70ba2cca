// What `dstack-supervisor init` would leave behind on a simulated host, for `run` with
// `[sim] enabled = true` and `[init] enabled = false`: an auth-simple config that admits the
// simulated platform's image. Only ever called when the simulator was chosen explicitly.
import { access, mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DEFAULT_SIM_IMAGE } from './vmm-config.ts';

// Write a starting auth-config.json at `path` unless one exists; returns whether it wrote.
export async function seedSimAuthConfig(path: string): Promise<boolean> {
  try {
    await access(path);
    return false;
  } catch {
    await mkdir(dirname(path), { recursive: true });
    const config = {
      osImages: [DEFAULT_SIM_IMAGE.digest],
      allowedTcbStatuses: ['UpToDate'],
      allowedAdvisoryIds: [],
      kms: { mrAggregated: [], devices: [], allowAnyDevice: true },
      apps: {},
    };
    await writeFile(path, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o644, flag: 'wx' });
    return true;
  }
}
