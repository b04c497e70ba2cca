// Lays out the installed file tree that both the .deb and the .rpm pack: the bundle and the
// Node 24 it runs on under /usr/lib/dstack-supervisor, the wrapper in /usr/bin, the four units,
// /etc/dstack with its conffiles, templates, docs and the man page. Modes and mtimes are set
// here, so the packages do not depend on the builder's umask or clock.
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { chmod, copyFile, lstat, lutimes, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { renderCopyright } from './package-copyright.mjs';

// The units the package owns, exactly these four (issue 6).
const UNITS = ['dstack-supervisor.service', 'dstack-vmm.service', 'dstack-auth-simple.service', 'gramine-sealing-key-provider.service'];

// Installed paths that must be executable; everything else is 0644 (directories 0755).
const EXECUTABLES = new Set(['usr/bin/dstack-supervisor', 'usr/lib/dstack-supervisor/node']);

// The VMM's own process supervisor lives at these paths (docs/dstack.md §5.3 "Name clash");
// nothing of ours may ever be installed there.
const FORBIDDEN_PATHS = ['usr/local/libexec/dstack/supervisor', 'usr/libexec/dstack/supervisor'];

const PKG = 'dstack-supervisor';

// Like gzip -9n: zlib writes no file name and a zero timestamp, so the output depends on the
// input only.
function gzip(data) {
  return gzipSync(data, { level: 9 });
}

async function put(stage, path, data) {
  const full = join(stage, path);
  await mkdir(dirname(full), { recursive: true });
  await writeFile(full, data);
}

async function copyInto(stage, path, from) {
  await mkdir(dirname(join(stage, path)), { recursive: true });
  await copyFile(from, join(stage, path));
}

function requireFile(path, hint) {
  if (!existsSync(path)) throw new Error(`${path} is missing; ${hint}`);
}

// Copy the four units, refusing to build a package without any of them.
async function stageUnits(stage, root, unitDir) {
  for (const unit of UNITS) {
    const from = join(root, 'systemd', unit);
    await copyInto(stage, join(unitDir, unit), from).catch((err) => {
      throw new Error(`systemd/${unit} is missing (${err.code}); the package ships all four units`, { cause: err });
    });
  }
}

// The bundle's files as scripts/bundle.mjs last wrote them (its metafile's outputs): the entry
// and the chunks it imports, under dist/, installed with the same layout.
function bundleFiles(metafile) {
  return Object.keys(metafile.outputs).map((path) => relative('dist', path)).sort();
}

async function stageProgram(stage, root, metafile) {
  const lib = `usr/lib/${PKG}`;
  requireFile(join(root, 'dist', `${PKG}.mjs`), 'run `npm run build` first (npm run package does)');
  for (const file of bundleFiles(metafile)) {
    requireFile(join(root, 'dist', file), 'run `npm run build` again: dist/ does not hold the bundle its metafile lists');
    await copyInto(stage, `${lib}/${file}`, join(root, 'dist', file));
  }
  // The Node flags the launcher passes (packaging/files/dstack-supervisor reads them from here).
  await copyInto(stage, `${lib}/node-flags`, join(root, 'packaging/files/node-flags'));
  // 126 MB with debug info, ~108 MB without; the dynamic symbols native addons link to stay.
  // The sections dh_strip also drops from executables go too.
  const node = join(root, 'node_modules/node/bin/node');
  await execa('strip', ['--strip-all', '--remove-section=.comment', '--remove-section=.note', '-o', join(stage, lib, 'node'), node]);
  for (const file of await readdir(join(root, 'proto'))) {
    if (file.endsWith('.proto')) await copyInto(stage, `${lib}/proto/${file}`, join(root, 'proto', file));
  }
  for (const file of await readdir(join(root, 'templates'))) {
    await copyInto(stage, `usr/share/${PKG}/templates/${file}`, join(root, 'templates', file));
  }
  // init finds templates/ by walking up from the bundle, as it finds proto/.
  await symlink(`../../share/${PKG}/templates`, join(stage, lib, 'templates'));
  await copyInto(stage, `usr/bin/${PKG}`, join(root, 'packaging/files', PKG));
}

async function stageConfig(stage, root) {
  await copyInto(stage, 'etc/dstack/supervisor.toml', join(root, 'templates/supervisor.toml'));
  await copyInto(stage, 'etc/dstack/apps.d/README', join(root, 'packaging/files/apps.d.README'));
  await copyInto(stage, 'etc/dstack/gateway.d/README', join(root, 'packaging/files/gateway.d.README'));
}

async function stageDocs(stage, root, { version, metafile, nodeVersion, nodeLicense, epoch }) {
  const doc = `usr/share/doc/${PKG}`;
  const header = await readFile(join(root, 'packaging/copyright'), 'utf8');
  await put(stage, `${doc}/copyright`, await renderCopyright({ header, metafile, root, nodeVersion, nodeLicense }));
  // A native package (no Debian revision) keeps its changelog as changelog.gz.
  await put(stage, `${doc}/changelog.gz`, gzip(await readFile(join(root, 'packaging/changelog'))));
  // The operator guide and the contract of the apps directory, which messages cite by rule number.
  for (const guide of ['operator-guide.md', 'apps-dir.md']) {
    requireFile(join(root, 'docs', guide), `docs/${guide} ships in the package`);
    await put(stage, `${doc}/${guide}.gz`, gzip(await readFile(join(root, 'docs', guide))));
  }
  for (const file of await readdir(join(root, 'examples'))) {
    await copyInto(stage, `${doc}/examples/${file}`, join(root, 'examples', file));
  }
  const man = (await readFile(join(root, 'packaging/files/dstack-supervisor.8'), 'utf8'))
    .replaceAll('@VERSION@', version)
    .replaceAll('@DATE@', new Date(epoch * 1000).toISOString().slice(0, 10));
  await put(stage, `usr/share/man/man8/${PKG}.8.gz`, gzip(man));
}

// Set modes and mtimes on everything below `dir`; returns the relative paths of regular files.
async function normalise(stage, dir, epoch) {
  const files = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    const path = relative(stage, full);
    if (entry.isDirectory()) {
      files.push(...(await normalise(stage, full, epoch)));
      await chmod(full, 0o755);
    } else if (entry.isFile()) {
      await chmod(full, EXECUTABLES.has(path) ? 0o755 : 0o644);
      files.push(path);
    }
    await lutimes(full, epoch, epoch);
  }
  return files;
}

// Where each format installs units: Debian 12 still uses /lib, rpm-based systems /usr/lib.
const UNIT_DIRS = { deb: 'lib/systemd/system', rpm: 'usr/lib/systemd/system' };

// Stage the tree for `format` ('deb' or 'rpm') into the empty directory `stage`. Returns the
// regular files, relative to `stage`.
export async function stageTree(stage, options) {
  const { root, format, epoch } = options;
  await stageProgram(stage, root, options.metafile);
  await stageUnits(stage, root, UNIT_DIRS[format]);
  if (format === 'deb') await copyInto(stage, `usr/share/lintian/overrides/${PKG}`, join(root, 'packaging/deb/lintian-overrides'));
  await stageConfig(stage, root);
  await stageDocs(stage, root, options);
  for (const path of FORBIDDEN_PATHS) {
    if (await lstat(join(stage, path)).catch(() => null)) throw new Error(`refusing to package ${path}: it is the VMM's process supervisor`);
  }
  const files = await normalise(stage, stage, epoch);
  await lutimes(stage, epoch, epoch);
  return files.sort();
}
