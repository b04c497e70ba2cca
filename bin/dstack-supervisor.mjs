#!/usr/bin/env node
// The npm bin: runs the TypeScript sources with Node 24's type stripping. The .deb ships the
// esbuild bundle and its own Node 24 instead (see packaging/).
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(
    `dstack-supervisor needs Node.js 24 or newer, but this is ${process.version}.\n` +
      'Run it through npm (npx dstack-supervisor, npm run dev), which puts the pinned Node 24 first on PATH.\n',
  );
  process.exit(1);
}
const { main } = await import('../src/cli.ts');
process.exitCode = await main(process.argv.slice(2));
