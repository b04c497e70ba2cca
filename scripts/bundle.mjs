// Bundle the CLI into ESM files, dist/dstack-supervisor.mjs and the chunks it imports from
// dist/chunks/, which the .deb ships beside its own Node 24 with no node_modules
// (docs/platform-notes.md §5). The TypeScript is compiled by esbuild here; Node's type stripping is only
// for running the sources in development.
//
//   node scripts/bundle.mjs [--outdir DIR]   (default dist/; bench/bundle.ts builds its own)
//
// Split into chunks, whitespace removed: the idle service holds the source of every file it
// loads for as long as it runs (V8 compiles functions lazily from it). As one 4.9 MB file, with
// comments whose non-ASCII characters made V8 keep it as a two-byte string, that source took
// 13.3 MB; split so that `run` loads only what it imports (init, the simulator, node-forge and
// D-Bus stay on disk until used) and without comments, 2.6 MB (V8's external_script_source_size
// with 100 apps, Node's own 1.7 MB included; issue 5). Names are kept, so stack traces still
// name functions.
import { build } from 'esbuild';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({ options: { outdir: { type: 'string' } } });
const outdir = resolve(values.outdir ?? join(root, 'dist'));

// The same call bin/dstack-supervisor.mjs makes, minus its Node version check: the package
// always runs the bundle with the Node 24 it carries.
const entry = [
  "import { main } from './src/cli.ts';",
  'process.exitCode = await main(process.argv.slice(2));',
].join('\n');

// CJS dependencies (pino, protobufjs, dbus-next) call require() for Node built-ins; an ESM
// bundle has no require unless the banner makes one (in every chunk).
const banner = "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);";

const result = await build({
  stdin: { contents: entry, resolveDir: root, sourcefile: 'dstack-supervisor-entry.ts', loader: 'ts' },
  // Metafile paths are relative to this, and scripts/package.mjs resolves them against the root.
  absWorkingDir: root,
  outdir,
  entryNames: 'dstack-supervisor',
  chunkNames: 'chunks/[name]-[hash]',
  outExtension: { '.js': '.mjs' },
  splitting: true,
  minifyWhitespace: true,
  write: false,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  // dbus-next requires these optionally; it does not need them for unix:path= buses.
  external: ['x11', 'usocket'],
  // The journal's socket is a prebuilt N-API addon (src/log/journal-socket.ts): its .node file is
  // copied beside the chunks and the require() rewritten to it, so it ships like a chunk.
  loader: { '.node': 'copy' },
  assetNames: 'chunks/[name]-[hash]',
  banner: { js: banner },
  legalComments: 'eof',
  logLevel: 'warning',
  metafile: true,
});

// zod is imported as a namespace (`import * as z from 'zod'`), whose property reads esbuild can
// follow: a single `import { z } from 'zod'` keeps all of zod, its 60 locales among them (the
// chunk `run` loads is 601 KB instead of 150 KB; idle RSS ~1.6 MB more, README "Measured speed").
const bundled = Object.values(result.metafile.outputs).flatMap((output) => Object.keys(output.inputs));
if (bundled.some((path) => path.endsWith('zod/v4/locales/de.js'))) {
  throw new Error("all of zod is in the bundle, unused locales too: a module imports `{ z } from 'zod'`; import it as `* as z` (grep -rn \"{ z } from 'zod'\" src)");
}

// Each file is replaced whole (temp + rename): a package build running at the same time (the
// package test builds one) never reads half a bundle. Chunk names carry a hash of their content,
// so the chunks go first and the entry that imports them last.
async function replaceFile(path, data) {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.tmp-${process.pid}`;
  await writeFile(temp, data);
  await rename(temp, path);
}

const entryPath = join(outdir, 'dstack-supervisor.mjs');
const outputs = [...result.outputFiles].sort((a, b) => Number(a.path === entryPath) - Number(b.path === entryPath));
for (const file of outputs) await replaceFile(file.path, file.contents);
// Chunks (and addons) of earlier builds that this one no longer imports.
const current = new Set(outputs.map((file) => file.path));
for (const name of await readdir(join(outdir, 'chunks'))) {
  const path = join(outdir, 'chunks', name);
  if (!current.has(path) && /\.(mjs|node)$/.test(name)) await rm(path, { force: true });
}
// Which npm packages went into the bundle, and which files it is: scripts/package.mjs lists the
// packages, with their licenses, in the package's copyright file, and installs the files.
await replaceFile(join(outdir, 'dstack-supervisor.meta.json'), JSON.stringify(result.metafile));
