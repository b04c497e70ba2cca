// `npm run package` (after `npm run build`): dist/dstack-supervisor_<version>_amd64.deb, and
// dist/dstack-supervisor-<version>.x86_64.rpm where rpmbuild exists. No network beyond the npm
// registry (the Node.js license text, see package-copyright.mjs).
//
//   node scripts/package.mjs [--out DIR] [--no-rpm]
import { mkdtemp, mkdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { nodeLicenseText } from './package-copyright.mjs';
import { buildDeb } from './package-deb.mjs';
import { buildRpm, hasRpmbuild } from './package-rpm.mjs';
import { stageTree } from './package-stage.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));

const { values } = parseArgs({
  options: { out: { type: 'string' }, 'no-rpm': { type: 'boolean', default: false } },
});
const outDir = resolve(values.out ?? join(root, 'dist'));

const { version } = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'));
const nodeVersion = JSON.parse(await readFile(join(root, 'node_modules/node/package.json'), 'utf8')).version;
const metafile = JSON.parse(
  await readFile(join(root, 'dist/dstack-supervisor.meta.json'), 'utf8').catch(() => {
    throw new Error('dist/dstack-supervisor.meta.json is missing; run `npm run build` first');
  }),
);

// The newest changelog entry must be this version; its date stamps every file (reproducible).
const changelog = await readFile(join(root, 'packaging/changelog'), 'utf8');
const top = /^dstack-supervisor \(([^)]+)\)/.exec(changelog)?.[1];
if (top !== version) {
  throw new Error(`packaging/changelog starts with version ${top ?? '(none)'}, package.json says ${version}; add a changelog entry`);
}
const date = /^ -- .+?> {2}(.+)$/m.exec(changelog)?.[1];
const epoch = Math.floor(Date.parse(date ?? '') / 1000);
if (!Number.isFinite(epoch)) throw new Error(`packaging/changelog: cannot read the date of the ${version} entry`);

const nodeLicense = await nodeLicenseText(nodeVersion, join(root, 'dist/.cache'));
const work = await mkdtemp(join(tmpdir(), 'dstack-package-'));
try {
  await mkdir(outDir, { recursive: true });
  const common = { root, version, metafile, nodeVersion, nodeLicense, epoch };
  const debStage = join(work, 'deb');
  await mkdir(debStage);
  const files = await stageTree(debStage, { ...common, format: 'deb' });
  console.log(await buildDeb({ root, stage: debStage, files, outDir, version, epoch }));
  if (!values['no-rpm'] && (await hasRpmbuild())) {
    const rpmStage = join(work, 'rpm-root');
    await mkdir(rpmStage);
    await stageTree(rpmStage, { ...common, format: 'rpm' });
    console.log(await buildRpm({ root, stage: rpmStage, workDir: join(work, 'rpmbuild'), outDir, version }));
  } else if (!values['no-rpm']) {
    console.log('rpmbuild not found: no .rpm (apt-get install rpm to build one)');
  }
} finally {
  await rm(work, { recursive: true, force: true });
}
