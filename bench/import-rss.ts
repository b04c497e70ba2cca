// What the idle resident set is made of before any app: a bare Node 24 process, and what each
// runtime dependency of `run` adds to it when imported alone. Explains the idle figure; there is
// no goal of its own.
// Run: node_modules/.bin/node bench/import-rss.ts
import { spawn } from 'node:child_process';
import { describeMachine, printResult, round } from './report.ts';

// The packages `dstack-supervisor run` loads while idle. Left out: init-only ones (node-forge,
// dbus-next, and undici and execa, which init still uses), imported lazily by the init command,
// and @noble/curves, loaded with the first app that has an env file.
const DEPENDENCIES = ['zod', 'pino', 'yaml', 'protobufjs', 'smol-toml', 'mitt'];

// RSS (MB) of a node process after it ran `code` and let 500 ms pass.
function rssAfter(code: string): Promise<number> {
  const script = `${code}.then(() => setTimeout(() => { const s = require('node:fs').readFileSync('/proc/self/status', 'utf8'); process.stdout.write(/VmRSS:\\s+(\\d+)/.exec(s)[1]); }, 500))`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'], cwd: import.meta.dirname });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(round(Number(out) / 1024)) : reject(new Error(`${script} exited ${code}`))));
  });
}

const machine = describeMachine();
const bareNode = await rssAfter('Promise.resolve()');
const dependencies: Record<string, number> = {};
for (const dep of DEPENDENCIES) dependencies[dep] = round((await rssAfter(`import(${JSON.stringify(dep)})`)) - bareNode);
// Under systemd only (--log-format journal): the journal socket's addon, loaded as
// src/log/journal-socket.ts loads it (an ES import cannot load a .node file).
dependencies['node-unix-socket addon'] = round((await rssAfter('Promise.resolve(require("node-unix-socket-linux-x64-gnu"))')) - bareNode);
printResult('import-rss', machine, { bareNodeMB: bareNode, addedByDependencyMB: dependencies });
