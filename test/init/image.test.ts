import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { ensureGuestImage, selectImage, verifyImage } from '../../src/init/image.ts';
import { InitError } from '../../src/init/errors.ts';
import { initIn, serveHttp, tempDir } from './helpers.ts';
import { writeFakeGuestImage } from '../../src/sim/guest-image.ts';

const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

// A release-shaped image directory: files, sha256sum.txt over them, digest.txt over that.
async function writeImage(dir: string, opts: { version?: string; isDev?: boolean } = {}): Promise<string> {
  await mkdir(dir, { recursive: true });
  const files: Record<string, string> = {
    'metadata.json': JSON.stringify({ kernel: 'bzImage', initrd: 'initramfs.cpio.gz', version: opts.version, is_dev: opts.isDev ?? false }),
    bzImage: `kernel of ${dir}`,
    'initramfs.cpio.gz': `initrd of ${dir}`,
  };
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
  const sums = Object.entries(files).map(([name, content]) => `${sha256(content)}  ${name}\n`).join('');
  await writeFile(join(dir, 'sha256sum.txt'), sums);
  const digest = sha256(sums);
  await writeFile(join(dir, 'digest.txt'), `${digest}\n`);
  return digest;
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => assert.fail('expected a failure'),
    (err: unknown) => {
      assert.ok(err instanceof InitError, `not an InitError: ${String(err)}`);
      return err.code;
    },
  );
}

test('a good image verifies and its pin is the trimmed digest.txt', async (t) => {
  const root = await tempDir(t);
  const digest = await writeImage(join(root, 'dstack-0.5.11'));
  assert.equal(await verifyImage(join(root, 'dstack-0.5.11')), digest);
});

test('a modified file fails verification and is named', async (t) => {
  const root = await tempDir(t);
  const dir = join(root, 'dstack-0.5.11');
  await writeImage(dir);
  await writeFile(join(dir, 'bzImage'), 'tampered');
  const err = await verifyImage(dir).catch((e: unknown) => e);
  assert.ok(err instanceof InitError);
  assert.equal(err.code, 'INIT_IMAGE');
  assert.match(err.message, /bzImage: sha256 /);
});

test('a digest.txt that is not the sha256 of sha256sum.txt fails', async (t) => {
  const root = await tempDir(t);
  const dir = join(root, 'dstack-0.5.11');
  await writeImage(dir);
  await writeFile(join(dir, 'digest.txt'), `${'0'.repeat(64)}\n`);
  assert.equal(await codeOf(verifyImage(dir)), 'INIT_IMAGE');
});

test('an image without digest.txt cannot be pinned', async (t) => {
  const root = await tempDir(t);
  const dir = join(root, 'dstack-0.5.11');
  await writeImage(dir);
  await rm(join(dir, 'digest.txt'));
  const err = await verifyImage(dir).catch((e: unknown) => e);
  assert.ok(err instanceof InitError);
  assert.equal(err.code, 'INIT_IMAGE');
  assert.match(err.message, /digest\.txt is missing/);
});

test('a listed file that is missing fails', async (t) => {
  const root = await tempDir(t);
  const dir = join(root, 'dstack-0.5.11');
  await writeImage(dir);
  const sums = await readFile(join(dir, 'sha256sum.txt'), 'utf8');
  const extra = `${sums}${'a'.repeat(64)}  rootfs.img.parted.verity\n`;
  await writeFile(join(dir, 'sha256sum.txt'), extra);
  await writeFile(join(dir, 'digest.txt'), sha256(extra));
  const err = await verifyImage(dir).catch((e: unknown) => e);
  assert.ok(err instanceof InitError);
  assert.match(err.message, /rootfs\.img\.parted\.verity: missing/);
});

test('the newest non-dev image is picked by version, not by name order', async (t) => {
  const root = await tempDir(t);
  await writeImage(join(root, 'dstack-0.5.9'));
  await writeImage(join(root, 'dstack-0.5.11'));
  await writeImage(join(root, 'dstack-dev-0.6.0'), { isDev: true });
  await mkdir(join(root, 'not-an-image'));
  assert.equal(await selectImage(root, ''), 'dstack-0.5.11');
  assert.equal(await selectImage(root, 'dstack-0.5.9'), 'dstack-0.5.9');
  assert.equal(await selectImage(root, 'dstack-0.4.0'), undefined);
  assert.equal(await selectImage(join(root, 'missing'), ''), undefined);
});

test('ensureGuestImage without any image says where to put one', async (t) => {
  const root = await tempDir(t);
  const init = initIn(root);
  const err = await ensureGuestImage(init).catch((e: unknown) => e);
  assert.ok(err instanceof InitError);
  assert.equal(err.code, 'INIT_IMAGE');
  assert.match(err.message, /image_url/);
});

// Issue 15: a host run once with [sim] enabled keeps the stand-in image in images_dir; switched to
// real, init must not deploy its KMS on it.
test('issue 15: on a real host the simulated stand-in image is passed over, and refused by name with what to do', async (t) => {
  const root = await tempDir(t);
  const init = initIn(root, { image: '' });
  const fake = await writeFakeGuestImage(init.images_dir, 'dstack-0.9.0', '0.9.0');
  const refused = await ensureGuestImage(init).catch((e: unknown) => e);
  assert.ok(refused instanceof InitError);
  assert.match(refused.message, /no usable \(non-dev\) guest image/, 'the newest image is a simulated one, so none is usable');
  const byName = await ensureGuestImage({ ...init, image: fake.name }).catch((e: unknown) => e);
  assert.ok(byName instanceof InitError);
  const dir = join(init.images_dir, fake.name);
  assert.equal(byName.message, `init image: ${dir} is the simulated host's stand-in image (written while supervisor.toml had [sim] enabled = true); a real dstack-vmm cannot boot it. Remove it (rm -r ${dir}) and unpack a dstack guest image release in ${init.images_dir}, or set [init] image_url and image_sha256`);
  await writeImage(join(init.images_dir, 'dstack-0.5.11'));
  assert.equal((await ensureGuestImage(init)).name, 'dstack-0.5.11', 'a real image beside it is picked');
  assert.equal((await ensureGuestImage(init, {}, true)).name, 'dstack-0.9.0', 'a simulated host takes its own image');
});

// Serve one tarball built from a real image directory; returns its URL and sha256.
async function serveTarball(t: import('node:test').TestContext, root: string): Promise<{ url: string; sum: string; digest: string; hits: () => number }> {
  const src = join(root, 'src');
  const digest = await writeImage(join(src, 'dstack-0.5.12'), { version: '0.5.12' });
  const tarball = join(root, 'dstack-0.5.12.tar.gz');
  await execa('tar', ['-czf', tarball, '-C', src, 'dstack-0.5.12']);
  const body = await readFile(tarball);
  let hits = 0;
  const port = await serveHttp(t, (req, res) => {
    hits++;
    if (req.url === '/redirect') {
      res.writeHead(302, { location: '/dstack-0.5.12.tar.gz' }).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': body.length }).end(body);
  });
  return { url: `http://127.0.0.1:${port}/redirect`, sum: sha256(body), digest, hits: () => hits };
}

test('download: a tarball matching its published sha256 is unpacked, moved into place and verified', async (t) => {
  const root = await tempDir(t);
  const served = await serveTarball(t, root);
  const init = initIn(root, { image_url: served.url, image_sha256: served.sum });
  const image = await ensureGuestImage(init);
  assert.equal(image.name, 'dstack-0.5.12');
  assert.equal(image.pin, served.digest);
  assert.deepEqual(await readdir(init.images_dir), ['dstack-0.5.12']);

  // The image is there now: a re-run downloads nothing.
  const hitsBefore = served.hits();
  assert.equal((await ensureGuestImage(init)).pin, served.digest);
  assert.equal(served.hits(), hitsBefore);
});

test('download: a sha256 mismatch unpacks nothing and leaves no staging directory', async (t) => {
  const root = await tempDir(t);
  const served = await serveTarball(t, root);
  const init = initIn(root, { image_url: served.url, image_sha256: 'b'.repeat(64) });
  const err = await ensureGuestImage(init).catch((e: unknown) => e);
  assert.ok(err instanceof InitError);
  assert.equal(err.code, 'INIT_IMAGE_DOWNLOAD');
  assert.match(err.message, new RegExp(served.sum));
  assert.deepEqual(await readdir(init.images_dir), []);
});

test('download: image_url without image_sha256 is refused before any request', async (t) => {
  const root = await tempDir(t);
  const served = await serveTarball(t, root);
  const init = initIn(root, { image_url: served.url });
  assert.equal(await codeOf(ensureGuestImage(init)), 'INIT_IMAGE');
  assert.equal(served.hits(), 0);
});
