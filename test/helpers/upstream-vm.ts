// A VM made outside this supervisor, the way upstream's `dstack deploy` makes one (or a release of
// ours before issue 16, which did the same with its own manifest): the compose hash registered in
// auth-config.json as dstack-cli-core config.rs `register_app_in_allowlist` does (read, add the
// entry, write), then CreateVm with only the fields dstack-cli main.rs `cmd_deploy` sets.
import { readFile, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { createVmmClient } from '../../src/vmm/client.ts';
import type { Harness } from './harness.ts';
import { defer } from './cleanup.ts';

type TestContext = Parameters<typeof defer>[0];

export type MadeVm = { id: string; appId: string; hash: string };

// Make VM `name` from `manifest` with `--port PORT:PORT` (tcp on 127.0.0.1: a compose file's
// "PORT:80" publishes PORT inside the CVM), upstream's default size (2 vCPU, 2048 MB, 20 GB) and app
// id the first 40 hex of the manifest's sha256; resolves once it has booted.
export async function createVmLikeUpstream(t: TestContext, h: Harness, name: string, manifest: string, port: number): Promise<MadeVm> {
  const hash = createHash('sha256').update(manifest, 'utf8').digest('hex');
  const appId = hash.slice(0, 40);
  const authPath = h.config.auth.config_path;
  const doc = JSON.parse(await readFile(authPath, 'utf8')) as { apps: Record<string, unknown> };
  doc.apps[appId] = { composeHashes: [hash], devices: [], allowAnyDevice: true };
  await writeFile(authPath, JSON.stringify(doc, null, 2));
  const vmm = createVmmClient({ url: h.sim.vmmUrl });
  defer(t, () => vmm.close());
  const [image] = await vmm.listImages();
  const { id } = await vmm.createVm({
    name,
    image: image?.name ?? '',
    compose_file: manifest,
    vcpu: 2,
    memory: 2048,
    disk_size: 20,
    ports: [{ protocol: 'tcp', host_address: '127.0.0.1', host_port: port, vm_port: port }],
    app_id: appId,
  });
  await h.until((vms) => vms.some((v) => v.id === id && v.status === 'running' && v.boot_progress === 'done'), `${name}'s VM made outside booted`);
  return { id, appId, hash };
}
