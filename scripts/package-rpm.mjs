// Turns a staged tree into dstack-supervisor-<version>.x86_64.rpm with rpmbuild, where it exists.
// The spec (packaging/rpm) only copies the tree; %files is generated from it here.
import { execa } from 'execa';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

// Directories the package owns; the rest (/usr/bin, /etc, the unit directory) belong to the OS.
const OWNED_DIRS = [
  '/etc/dstack',
  '/etc/dstack/apps.d',
  '/etc/dstack/gateway.d',
  '/usr/lib/dstack-supervisor',
  '/usr/share/dstack-supervisor',
  '/usr/share/doc/dstack-supervisor',
];

// Kept on upgrade when edited, saved as .rpmsave on erase (the .deb's conffiles).
const CONFIG = new Set(['/etc/dstack/supervisor.toml', '/etc/dstack/apps.d/README', '/etc/dstack/gateway.d/README']);

// Every file and symlink below `dir`, plus the owned directories with their subdirectories.
async function filesSection(stage, dir = '') {
  const lines = [];
  for (const entry of await readdir(join(stage, dir), { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) {
      if (OWNED_DIRS.some((owned) => path === owned || path.startsWith(`${owned}/`))) lines.push(`%dir ${path}`);
      lines.push(...(await filesSection(stage, path)));
    } else {
      lines.push(CONFIG.has(path) ? `%config(noreplace) ${path}` : path);
    }
  }
  return lines;
}

// True when rpmbuild is on PATH.
export async function hasRpmbuild() {
  const { failed } = await execa('rpmbuild', ['--version'], { reject: false });
  return !failed;
}

// Build the .rpm from `stage` into `outDir`, working in `workDir`; returns its path.
export async function buildRpm({ root, stage, workDir, outDir, version }) {
  const spec = (await readFile(join(root, 'packaging/rpm/dstack-supervisor.spec'), 'utf8'))
    .replaceAll('@VERSION@', version)
    .replaceAll('@STAGE@', stage)
    .replaceAll('@FILES@', (await filesSection(stage)).join('\n'));
  await mkdir(workDir, { recursive: true });
  const specPath = join(workDir, 'dstack-supervisor.spec');
  await writeFile(specPath, spec);
  await execa('rpmbuild', [
    '-bb',
    '--define', `_topdir ${workDir}`,
    '--define', `_rpmdir ${outDir}`,
    '--define', '_build_name_fmt %%{NAME}-%%{VERSION}.%%{ARCH}.rpm',
    specPath,
  ]);
  return join(outDir, `dstack-supervisor-${version}.x86_64.rpm`);
}
