// A guest image for the simulated host: a release-shaped directory (metadata.json, stand-in
// kernel and initrd, sha256sum.txt over them, digest.txt over that, docs/dstack.md §7) that init's image
// step verifies like a real one, and the list the simulated VMM's ListImages serves from it, so
// the OS-image pin init writes into auth-config.json is the hash simulated guests boot with.
import { createHash } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readFileIfExists } from '../init/files.ts';
import { SIMULATED_IMAGE_MARK } from '../init/image.ts';
import { DEFAULT_SIM_IMAGE, type SimImage } from './vmm-config.ts';

const sha256 = (data: string): string => createHash('sha256').update(data).digest('hex');

// Write image `name` under `imagesDir` (replacing its files) and return it as the VMM lists it.
export async function writeFakeGuestImage(imagesDir: string, name = DEFAULT_SIM_IMAGE.name, version = DEFAULT_SIM_IMAGE.version): Promise<SimImage> {
  const dir = join(imagesDir, name);
  await mkdir(dir, { recursive: true });
  const files: Record<string, string> = {
    // simulated_by: a real host refuses it (src/init/image.ts), and `apt purge` removes it.
    'metadata.json': `${JSON.stringify({ kernel: 'bzImage', initrd: 'initramfs.cpio.gz', version, is_dev: false, simulated_by: SIMULATED_IMAGE_MARK })}\n`,
    bzImage: `simulated kernel of ${name}\n`,
    'initramfs.cpio.gz': `simulated initrd of ${name}\n`,
  };
  for (const [file, content] of Object.entries(files)) await writeFile(join(dir, file), content);
  const sums = Object.entries(files).map(([file, content]) => `${sha256(content)}  ${file}\n`).join('');
  await writeFile(join(dir, 'sha256sum.txt'), sums);
  const digest = sha256(sums);
  await writeFile(join(dir, 'digest.txt'), `${digest}\n`);
  return { name, version, digest };
}

// Every image directory under `imagesDir` that has a digest.txt, as the simulated VMM lists it.
export async function readSimImages(imagesDir: string): Promise<SimImage[]> {
  const entries = await readdir(imagesDir, { withFileTypes: true }).catch(() => []);
  const images: SimImage[] = [];
  for (const entry of entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).sort((a, b) => a.name.localeCompare(b.name))) {
    const digest = (await readFileIfExists(join(imagesDir, entry.name, 'digest.txt')))?.trim().toLowerCase();
    if (digest === undefined || digest === '') continue;
    images.push({ name: entry.name, version: versionOf(await readFileIfExists(join(imagesDir, entry.name, 'metadata.json'))), digest });
  }
  return images;
}

// The images under `imagesDir`, after writing the default one there if it holds none.
export async function ensureSimImages(imagesDir: string): Promise<SimImage[]> {
  const images = await readSimImages(imagesDir);
  return images.length > 0 ? images : [await writeFakeGuestImage(imagesDir)];
}

function versionOf(metadata: string | undefined): string {
  try {
    const parsed: unknown = JSON.parse(metadata ?? '{}');
    return typeof parsed === 'object' && parsed !== null && 'version' in parsed && typeof parsed.version === 'string' ? parsed.version : '';
  } catch {
    return '';
  }
}
