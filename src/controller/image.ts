import type { Logger } from '../log/logger.ts';
import type { ImageInfo } from '../vmm/messages.ts';
import { SupervisorError } from '../errors.ts';

// Compare dotted versions numerically ("0.5.10" > "0.5.9").
function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  const pb = b.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

// The guest image apps get: `[apps] image` if set, else the newest non-dev image the VMM lists.
export async function resolveImage(vmm: { listImages(): Promise<ImageInfo[]> }, configured: string, log: Logger): Promise<string> {
  if (configured !== '') return configured;
  const images = (await vmm.listImages()).filter((i) => !i.is_dev);
  const newest = images.sort((a, b) => compareVersions(b.version, a.version))[0];
  if (!newest) {
    throw new SupervisorError(
      'NO_GUEST_IMAGE',
      'dstack-vmm lists no guest image; run `dstack-supervisor init` or set [apps] image in supervisor.toml',
    );
  }
  log.info({ IMAGE: newest.name }, `apps use guest image ${newest.name} (newest the VMM lists; set [apps] image to pin one)`);
  return newest.name;
}
