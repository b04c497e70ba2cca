// What one compose file costs the supervisor to parse and check (issue 13): `dstack-supervisor
// hash FILE`, the same spec builder the reconciler runs, as the package ships it (bundle, node
// flags), once per case in its own process: wall time, the time over a small valid file's run
// (start-up, config), peak RSS, and what it said. The cases are files that are valid compose yet
// cost the parser far more than their size, and files at the limits that must still be cheap.
// Run: node_modules/.bin/node bench/parse.ts [--repeat 3] [--timeout-s 600] [--bundle 1] [--flags 1]
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { manyKeysYaml, mergeAmplifiedYaml } from '../test/helpers/hostile-yaml.ts';
import { shippedProgram } from './bundle.ts';
import { describeMachine, numberArgs, printResult, round } from './report.ts';

const args = numberArgs({ repeat: 3, 'timeout-s': 600, bundle: 1, flags: 1 });
const machine = describeMachine();
const ROOT = join(import.meta.dirname, '..');
const HEAD = 'services:\n  web:\n    image: nginx:1.27\n';

// `count` lines made by `line(i)`.
const lines = (count: number, line: (i: number) => string) => Array.from({ length: count }, (_, i) => line(i)).join('');

const CASES: Record<string, string> = {
  // A small valid file: the run every other is compared with.
  baseline: `${HEAD}    ports: ["8080:80"]\n`,
  // The issue's two files: 50 000 keys under x-junk (586 KiB), and 99 merges of one 20 000-key
  // anchor (under yaml's alias-count limit of 100).
  'junk-50000-keys': manyKeysYaml(50_000),
  'merge-99x20000-keys': mergeAmplifiedYaml(20_000, 99),
  // An alias bomb small enough in the text to pass the node count, stopped by the expansion budget.
  'merge-99x5000-keys': mergeAmplifiedYaml(5_000, 99),
  // Just under each limit: accepted, and what a file can cost at most.
  'nodes-at-limit': `${HEAD}x-data:\n${lines(6_660, (i) => `  k${i}: v\n`)}`,
  'expansion-at-limit': `x-cmd: &cmd [${lines(990, (i) => `"\${V${i}}", `)}x]\nservices:\n${lines(99, (i) => `  s${i}:\n    image: nginx\n    command: *cmd\n`)}`,
  // 1 MiB ([apps] max_file_bytes) of `[1,1,…]`: the densest text, refused by the count.
  'flow-list-1mib': `${HEAD}x-d: [${'1,'.repeat(524_250)}1]\n`,
  // Spec checks past the parser: an `extends:` chain of 3 300 services, and port ranges that
  // made 2 M mappings.
  'extends-chain-3300': `services:\n${lines(3_300, (i) => `  s${i}: {extends: s${i + 1}}\n`)}  s3300: {image: nginx}\n`,
  'port-ranges-100x20001': `services:\n${lines(100, (i) => `  s${i}:\n    image: nginx\n    ports: ["20000-40000:20000-40000"]\n`)}`,
};

type Run = { wallMs: number; peakRssMB: number; exit: number | null; said: string };

// One `hash` run on `file`; peak RSS comes from bench/rss-probe.mjs on fd 3.
function runHash(program: { bin: string | undefined; nodeArgs: string[] }, file: string, config: string): Promise<Run> {
  const bin = program.bin ?? join(ROOT, 'bin', 'dstack-supervisor.mjs');
  const argv = [...program.nodeArgs, '--import', join(import.meta.dirname, 'rss-probe.mjs'), bin, 'hash', file, '--config', config];
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), args['timeout-s'] * 1000);
    let stderr = '';
    let probe = '';
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (c: Buffer) => (probe += c.toString()));
    child.once('error', reject);
    child.once('close', (exit) => {
      clearTimeout(timer);
      const wallMs = performance.now() - started;
      const peak = probe === '' ? Number.NaN : (JSON.parse(probe) as { maxRssKB: number }).maxRssKB / 1024;
      // The message without the temp path: "junk.yaml:6668:11: has more than …".
      const said = stderr.split('\n')[0]?.replace(/^dstack-supervisor hash: \S*\//, '').slice(0, 160) ?? '';
      resolve({ wallMs: round(wallMs), peakRssMB: round(peak), exit: exit ?? (child.signalCode === 'SIGKILL' ? -1 : null), said });
    });
  });
}

const dir = await mkdtemp(join(tmpdir(), 'bench-parse-'));
try {
  const program = await shippedProgram({ bundle: args.bundle, flags: args.flags });
  const config = join(dir, 'supervisor.toml');
  await writeFile(config, `[apps]\nowner = ${process.getuid?.() ?? 0}\n`);
  const results: Record<string, Run & { bytes: number; runs: number[] }> = {};
  for (const [name, text] of Object.entries(CASES)) {
    const file = join(dir, `${name}.yaml`);
    await writeFile(file, text);
    const runs: Run[] = [];
    for (let i = 0; i < args.repeat; i++) runs.push(await runHash(program, file, config));
    // The median run by wall time, with every run's time beside it.
    const sorted = [...runs].sort((a, b) => a.wallMs - b.wallMs);
    const median = sorted[Math.floor((sorted.length - 1) / 2)] as Run;
    results[name] = { bytes: Buffer.byteLength(text), ...median, runs: runs.map((r) => r.wallMs) };
    process.stderr.write(`bench/parse: ${name} ${median.wallMs} ms, ${median.peakRssMB} MB: ${median.said}\n`);
  }
  const baseline = results['baseline']?.wallMs ?? 0;
  const cases = Object.fromEntries(Object.entries(results).map(([name, r]) => [name, { ...r, overBaselineMs: round(r.wallMs - baseline) }]));
  printResult('parse', machine, { command: 'dstack-supervisor hash FILE', program: program.described, cases });
} finally {
  await rm(dir, { recursive: true, force: true });
}
