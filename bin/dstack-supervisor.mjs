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
// The Node flags the package's launcher passes (packaging/files/node-flags): when this process
// was started without them, it becomes the same program with them. execve keeps the PID, which
// systemd's NotifyAccess=main relies on, and never returns.
const { readNodeFlags } = await import('../src/node-flags.ts');
const flags = readNodeFlags();
if (!flags.every((flag) => process.execArgv.includes(flag))) {
  process.execve(process.execPath, [process.execPath, ...flags, ...process.execArgv, import.meta.filename, ...process.argv.slice(2)]);
}
const { main } = await import('../src/cli.ts');
process.exitCode = await main(process.argv.slice(2));
