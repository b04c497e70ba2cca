// Init step 2: the guest image. Pick the configured image or the newest release under
// images_dir, verify every file `sha256sum.txt` lists and that `digest.txt` is the sha256 of
// `sha256sum.txt` (docs/dstack.md §7), and hand back the pin auth-simple's `osImages` needs.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, normalize } from 'node:path';
import * as z from 'zod';
import type { InitSection } from './config-schema.ts';
import { imageError } from './errors.ts';
import { isNotFound, readFileIfExists } from './files.ts';
import { downloadImage, type DownloadDeps } from './image-download.ts';

// A verified image: its directory name (what CreateVm's `image` takes), path and OS-image pin.
export type GuestImage = { name: string; dir: string; pin: string };

// The part of metadata.json that decides whether the VMM can load the image and which is newest.
const MetadataSchema = z.looseObject({
  kernel: z.string().min(1),
  initrd: z.string().min(1),
  version: z.string().optional(),
  is_dev: z.boolean().optional(),
  // Set only in the stand-in image the simulated host writes (src/sim/guest-image.ts); no dstack
  // release has it.
  simulated_by: z.string().optional(),
});

// The value of `simulated_by` in the simulated host's stand-in image.
export const SIMULATED_IMAGE_MARK = 'dstack-supervisor';

type Candidate = { name: string; version: number[]; isDev: boolean; simulated: boolean };

// Find, (download if allowed and needed,) and verify the guest image `init` asks for. On a real
// host (`simulatedHost` false) the simulated host's stand-in image is never picked, and asked for
// by name it is refused: a host once run with `[sim] enabled` must not deploy its KMS on it.
export async function ensureGuestImage(init: InitSection, deps: DownloadDeps = {}, simulatedHost = false): Promise<GuestImage> {
  if (init.image_url !== '' && init.image_sha256 === '') {
    throw imageError(`[init] image_url is set but image_sha256 is empty; put the release's published sha256 in supervisor.toml so the download can be verified before it is unpacked`);
  }
  let name = await selectImage(init.images_dir, init.image, simulatedHost);
  if (name === undefined && init.image_url !== '') {
    name = await downloadImage(init.image_url, init.image_sha256, init.images_dir, deps);
    if (init.image !== '' && name !== init.image) {
      throw imageError(`${init.image_url} unpacked as "${name}", but [init] image asks for "${init.image}"; fix one of them`);
    }
  }
  if (name === undefined) {
    const which = init.image === '' ? 'no usable (non-dev) guest image' : `image "${init.image}" is not there`;
    throw imageError(`${init.images_dir}: ${which}; unpack a dstack guest image release there, or set [init] image_url and image_sha256 in supervisor.toml`);
  }
  const dir = join(init.images_dir, name);
  if (!simulatedHost && (await isSimulatedImage(dir))) {
    throw imageError(
      `${dir} is the simulated host's stand-in image (written while supervisor.toml had [sim] enabled = true); a real dstack-vmm cannot boot it. ` +
        `Remove it (rm -r ${dir}) and unpack a dstack guest image release in ${init.images_dir}, or set [init] image_url and image_sha256`,
    );
  }
  return { name, dir, pin: await verifyImage(dir) };
}

async function isSimulatedImage(dir: string): Promise<boolean> {
  const meta = MetadataSchema.safeParse(parseJson(await readFileIfExists(join(dir, 'metadata.json'))));
  return meta.success && meta.data.simulated_by === SIMULATED_IMAGE_MARK;
}

// The configured image's name if its directory exists, else the newest non-dev image (a simulated
// one only on a simulated host), else undefined.
export async function selectImage(imagesDir: string, configured: string, simulatedHost = false): Promise<string | undefined> {
  if (configured !== '') {
    const info = await stat(join(imagesDir, configured)).catch(() => undefined);
    return info?.isDirectory() ? configured : undefined;
  }
  const candidates = (await listCandidates(imagesDir)).filter((c) => !c.isDev && (simulatedHost || !c.simulated));
  candidates.sort((a, b) => compareVersions(b.version, a.version) || (a.name < b.name ? 1 : -1));
  return candidates[0]?.name;
}

// Check `dir` against its sha256sum.txt and digest.txt; returns the pin (digest.txt, trimmed).
export async function verifyImage(dir: string): Promise<string> {
  const sumsPath = join(dir, 'sha256sum.txt');
  const digestPath = join(dir, 'digest.txt');
  const sums = await readRequired(sumsPath, 'the image has no checksum list');
  const digest = (await readRequired(digestPath, 'the image has no digest.txt, so it cannot be pinned in auth-config.json osImages')).toString('utf8').trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(digest)) throw imageError(`${digestPath}: expected 64 hex characters, found "${digest.slice(0, 80)}"`);
  const sumsDigest = createHash('sha256').update(sums).digest('hex');
  if (sumsDigest !== digest) {
    throw imageError(`${digestPath} says ${digest} but sha256 of ${sumsPath} is ${sumsDigest}; the image is corrupt or was modified: download it again`);
  }
  const entries = parseSums(sumsPath, sums.toString('utf8'));
  const bad: string[] = [];
  for (const { hash, file } of entries) {
    const actual = await hashFile(join(dir, file));
    if (actual === undefined) bad.push(`${file}: missing`);
    else if (actual !== hash) bad.push(`${file}: sha256 ${actual}, expected ${hash}`);
  }
  if (bad.length > 0) {
    throw imageError(`${dir} does not match ${sumsPath}; download the image again:\n  ${bad.join('\n  ')}`);
  }
  return digest;
}

async function listCandidates(imagesDir: string): Promise<Candidate[]> {
  let names: string[];
  try {
    names = (await readdir(imagesDir, { withFileTypes: true })).filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name);
  } catch (err) {
    if (isNotFound(err)) return [];
    throw imageError(`cannot list ${imagesDir}`, err);
  }
  const found: Candidate[] = [];
  for (const name of names) {
    const meta = MetadataSchema.safeParse(parseJson(await readFileIfExists(join(imagesDir, name, 'metadata.json'))));
    // The VMM silently skips directories it cannot load (docs/dstack.md §7); so do we.
    if (!meta.success) continue;
    const version = meta.data.version ?? /^dstack-(?:dev-)?(\d[\w.]*)$/.exec(name)?.[1] ?? '';
    found.push({ name, version: parseVersion(version), isDev: meta.data.is_dev ?? name.startsWith('dstack-dev-'), simulated: meta.data.simulated_by === SIMULATED_IMAGE_MARK });
  }
  return found;
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function parseVersion(version: string): number[] {
  return version.split(/[.-]/).map((part) => Number.parseInt(part, 10)).filter((n) => Number.isFinite(n));
}

function compareVersions(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const diff = (a[i] ?? -1) - (b[i] ?? -1);
    if (diff !== 0) return diff;
  }
  return 0;
}

// `sha256sum` output: "<hex>  <file>" (or "<hex> *<file>" in binary mode), one per line.
function parseSums(path: string, text: string): { hash: string; file: string }[] {
  const entries: { hash: string; file: string }[] = [];
  for (const [index, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    const match = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line);
    const file = match?.[2];
    if (match === null || file === undefined) throw imageError(`${path} line ${index + 1} is not "<sha256>  <file>": "${line.slice(0, 120)}"`);
    if (isAbsolute(file) || normalize(file).startsWith('..')) throw imageError(`${path} line ${index + 1} names a file outside the image: "${file}"`);
    entries.push({ hash: (match[1] ?? '').toLowerCase(), file });
  }
  if (entries.length === 0) throw imageError(`${path} lists no files`);
  return entries;
}

async function hashFile(path: string): Promise<string | undefined> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw imageError(`cannot read ${path}`, err);
  }
  return hash.digest('hex');
}

async function readRequired(path: string, why: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    if (isNotFound(err)) throw imageError(`${path} is missing: ${why}; use a release image that ships it`);
    throw imageError(`cannot read ${path}`, err);
  }
}
