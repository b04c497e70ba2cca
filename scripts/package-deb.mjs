// Turns a staged tree into dstack-supervisor_<version>_amd64.deb with dpkg-deb: control with the
// computed Installed-Size, conffiles, the maintainer scripts and md5sums (docs/platform-notes.md §3).
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { copyFile, chmod, lstat, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const SCRIPTS = ['postinst', 'prerm', 'postrm'];

// What dpkg-gencontrol would write: KiB per file (rounded up) plus one per directory or link.
async function installedSizeKiB(dir) {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) total += 1 + (await installedSizeKiB(full));
    else if (entry.isFile()) total += Math.ceil((await lstat(full)).size / 1024);
    else total += 1;
  }
  return total;
}

async function md5sums(stage, files, conffiles) {
  const lines = [];
  for (const path of files) {
    // dpkg tracks conffiles' checksums itself; dh_md5sums leaves them out too.
    if (conffiles.has(`/${path}`)) continue;
    lines.push(`${createHash('md5').update(await readFile(join(stage, path))).digest('hex')}  ${path}`);
  }
  return `${lines.join('\n')}\n`;
}

// gzip -6: 40 MB in ~8 s. xz -6 gives 27 MB but takes two minutes on a busy 2-core builder, and
// zstd, though dpkg reads it, is not an official .deb member format (lintian: malformed-deb-archive).
const COMPRESSION = ['-Zgzip', '-z6'];

// Write DEBIAN/ into `stage` and build the .deb into `outDir`; returns the .deb's path.
export async function buildDeb({ root, stage, files, outDir, version, epoch }) {
  // Measured before DEBIAN/ exists, which is not installed.
  const size = await installedSizeKiB(stage);
  const control = join(stage, 'DEBIAN');
  await mkdir(control, { recursive: true });
  const template = await readFile(join(root, 'packaging/deb/control'), 'utf8');
  await writeFile(join(control, 'control'), template.replaceAll('@VERSION@', version).replaceAll('@INSTALLED_SIZE@', String(size)));
  const conffilesText = await readFile(join(root, 'packaging/deb/conffiles'), 'utf8');
  const conffiles = new Set(conffilesText.split('\n').filter((line) => line !== ''));
  for (const path of conffiles) {
    await lstat(join(stage, path)).catch((err) => {
      throw new Error(`packaging/deb/conffiles lists ${path}, which is not in the package`, { cause: err });
    });
  }
  await writeFile(join(control, 'conffiles'), conffilesText);
  await writeFile(join(control, 'md5sums'), await md5sums(stage, files, conffiles));
  for (const script of SCRIPTS) {
    await copyFile(join(root, 'packaging/deb', script), join(control, script));
    await chmod(join(control, script), 0o755);
  }
  for (const file of ['control', 'conffiles', 'md5sums']) await chmod(join(control, file), 0o644);
  await chmod(control, 0o755);
  const deb = join(outDir, `dstack-supervisor_${version}_amd64.deb`);
  await execa('dpkg-deb', ['--root-owner-group', ...COMPRESSION, '--build', stage, deb], {
    env: { SOURCE_DATE_EPOCH: String(epoch) },
  });
  return deb;
}
