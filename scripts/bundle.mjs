// Bundle the CLI into one ESM file, dist/dstack-supervisor.mjs, which the .deb ships beside its
// own Node 24 with no node_modules (platform-notes §5). The TypeScript is compiled by esbuild
// here; Node's type stripping is only for running the sources in development.
import { build } from 'esbuild';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

// The same call bin/dstack-supervisor.mjs makes, minus its Node version check: the package
// always runs the bundle with the Node 24 it carries.
const entry = [
  "import { main } from './src/cli.ts';",
  'process.exitCode = await main(process.argv.slice(2));',
].join('\n');

// CJS dependencies (pino, protobufjs, dbus-next) call require() for Node built-ins; an ESM
// bundle has no require unless the banner makes one.
const banner = "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);";

const result = await build({
  stdin: { contents: entry, resolveDir: root, sourcefile: 'dstack-supervisor-entry.ts', loader: 'ts' },
  // Metafile paths are relative to this, and scripts/package.mjs resolves them against the root.
  absWorkingDir: root,
  outfile: `${root}dist/dstack-supervisor.mjs`,
  write: false,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  // dbus-next requires these optionally; it does not need them for unix:path= buses.
  external: ['x11', 'usocket'],
  banner: { js: banner },
  legalComments: 'eof',
  logLevel: 'warning',
  metafile: true,
});

// Each file is replaced whole (temp + rename): a package build running at the same time (the
// package test builds one) never reads half a bundle.
async function replaceFile(path, data) {
  const temp = `${path}.tmp-${process.pid}`;
  await writeFile(temp, data);
  await rename(temp, path);
}

await mkdir(`${root}dist`, { recursive: true });
for (const file of result.outputFiles) await replaceFile(file.path, file.contents);
// Which npm packages went into the bundle: scripts/package.mjs lists them, with their
// licenses, in the package's copyright file.
await replaceFile(`${root}dist/dstack-supervisor.meta.json`, JSON.stringify(result.metafile));
