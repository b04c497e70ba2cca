// `npm run bench [-- NAME …]`: run every benchmark (or the named ones) one after the other, each
// in its own process so one's memory and timers never colour the next, and collect their JSON
// objects into bench/results.json (gitignored). Never part of `npm test`.
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeMachine } from './report.ts';

// In the order README lists them, each a bench file and its arguments; idle alone takes 5
// minutes, curve about 15. reaction-1000 drops beside 1000 running apps; curve repeats that
// beside 0, 100, 1 000 and 5 000 (issue 18); resync-drop places drops at offsets from a resync
// beside 1 000; burst-n1000 is burst with the concurrency limit lifted, to show what N = 4 costs;
// allowlist runs in this process's flags (README quotes it with the shipped ones).
const BENCHES: Record<string, [string, ...string[]]> = {
  reaction: ['reaction'],
  'reaction-1000': ['reaction', '--drops', '50', '--background', '1000'],
  curve: ['curve'],
  'resync-drop': ['resync-drop'],
  burst: ['burst'],
  'burst-n1000': ['burst', '--concurrency', '1000'],
  restart: ['restart'],
  idle: ['idle'],
  'vmm-rpc': ['vmm-rpc'],
  'import-rss': ['import-rss'],
  journal: ['journal'],
  parse: ['parse'],
  allowlist: ['allowlist'],
};

function runBench([file, ...args]: [string, ...string[]]): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(import.meta.dirname, `${file}.ts`), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`bench/${file}.ts ${args.join(' ')} exited with ${code}`));
      try {
        resolve(JSON.parse(out));
      } catch (err) {
        reject(new Error(`bench/${file}.ts printed no single JSON object: ${(err as Error).message}`));
      }
    });
  });
}

const wanted = process.argv.slice(2);
const unknown = wanted.filter((n) => !(n in BENCHES));
if (unknown.length > 0) throw new Error(`unknown bench ${unknown.join(', ')}; choose from ${Object.keys(BENCHES).join(', ')}`);
const names = wanted.length > 0 ? wanted : Object.keys(BENCHES);
const results: Record<string, unknown> = {};
const started = new Date();
for (const name of names) {
  process.stderr.write(`bench: ${name} …\n`);
  const t0 = Date.now();
  results[name] = await runBench(BENCHES[name] as [string, ...string[]]).catch((err: unknown) => ({ error: (err as Error).message }));
  process.stderr.write(`bench: ${name} done in ${Math.round((Date.now() - t0) / 1000)} s\n`);
}
// A subset run replaces only its own entries of an earlier results.json.
const file = join(import.meta.dirname, 'results.json');
const earlier = wanted.length > 0 ? ((await readFile(file, 'utf8').then(JSON.parse, () => ({}))) as { results?: Record<string, unknown> }).results : undefined;
const report = { startedAt: started.toISOString(), finishedAt: new Date().toISOString(), machine: describeMachine(), results: { ...earlier, ...results } };
await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
