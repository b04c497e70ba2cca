// Fetch a guest-image release tarball, check it against its published sha256 BEFORE unpacking
// anything, unpack it in a staging directory and move the image directory into place with one
// rename, so images_dir never holds a half-written or unverified image.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execa } from 'execa';
import { Agent, interceptors, request, type Dispatcher } from 'undici';
import { downloadError } from './errors.ts';

// Injected edges: the HTTP dispatcher (tests may pass their own) and the tar binary.
export type DownloadDeps = { dispatcher?: Dispatcher; tarPath?: string };

// The VMM's rule for image names (docs/dstack.md §2.1): at most 64 of [A-Za-z0-9_.-], no "..".
const IMAGE_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

// Download `url` into `imagesDir`; returns the image directory name it unpacked.
export async function downloadImage(url: string, sha256: string, imagesDir: string, deps: DownloadDeps = {}): Promise<string> {
  await mkdir(imagesDir, { recursive: true });
  const staging = await mkdtemp(join(imagesDir, '.staging-'));
  try {
    const tarball = join(staging, 'image.tar.gz');
    const actual = await fetchTo(url, tarball, deps.dispatcher);
    if (actual !== sha256.toLowerCase()) {
      throw downloadError(url, `sha256 is ${actual}, but ${sha256.toLowerCase()} was published; nothing was unpacked. Check [init] image_url and image_sha256`);
    }
    const unpacked = join(staging, 'unpacked');
    await mkdir(unpacked);
    await execa(deps.tarPath ?? 'tar', ['-xzf', tarball, '-C', unpacked, '--no-same-owner']).catch((err: unknown) => {
      throw downloadError(url, 'unpacking failed', err);
    });
    const { root, name } = await findImageRoot(url, unpacked);
    const target = join(imagesDir, name);
    if (!(await pathExists(target))) await rename(root, target);
    return name;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

// Stream the body to `file`, hashing it on the way; returns the hex sha256.
async function fetchTo(url: string, file: string, dispatcher: Dispatcher | undefined): Promise<string> {
  // Release assets redirect to a CDN; follow a few hops.
  const agent = dispatcher ?? new Agent().compose(interceptors.redirect({ maxRedirections: 5 }));
  try {
    const response = await request(url, { dispatcher: agent }).catch((err: unknown) => {
      throw downloadError(url, 'request failed', err);
    });
    if (response.statusCode !== 200) {
      await response.body.dump();
      throw downloadError(url, `server answered HTTP ${response.statusCode}`);
    }
    const hash = createHash('sha256');
    const tap = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        done(null, chunk);
      },
    });
    await pipeline(response.body, tap, createWriteStream(file)).catch((err: unknown) => {
      throw downloadError(url, 'download interrupted', err);
    });
    return hash.digest('hex');
  } finally {
    if (dispatcher === undefined) await agent.close();
  }
}

// A release unpacks either to one directory holding metadata.json or to the files themselves.
async function findImageRoot(url: string, unpacked: string): Promise<{ root: string; name: string }> {
  if (await pathExists(join(unpacked, 'metadata.json'))) {
    return { root: unpacked, name: checkName(url, basename(new URL(url).pathname).replace(/\.(tar\.gz|tgz)$/, '')) };
  }
  const dirs = (await readdir(unpacked, { withFileTypes: true })).filter((e) => e.isDirectory());
  const withMeta: string[] = [];
  for (const d of dirs) if (await pathExists(join(unpacked, d.name, 'metadata.json'))) withMeta.push(d.name);
  const [only] = withMeta;
  if (only === undefined || withMeta.length > 1) {
    throw downloadError(url, `expected one image directory with metadata.json in the tarball, found ${withMeta.length}`);
  }
  return { root: join(unpacked, only), name: checkName(url, only) };
}

function checkName(url: string, name: string): string {
  if (!IMAGE_NAME.test(name) || name.includes('..')) {
    throw downloadError(url, `image name "${name}" is not one the VMM accepts (at most 64 of A-Z a-z 0-9 _ . -)`);
  }
  return name;
}

async function pathExists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
