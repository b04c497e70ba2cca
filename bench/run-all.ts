// `npm run bench [-- NAME …]`: run every benchmark (or the named ones) one after the other, each
// in its own process so one's memory and timers never colour the next, and collect their JSON
// objects into bench/results.json (gitignored). Never part of `npm test`.
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeMachine } from './report.ts';

// In the order README lists them; idle alone takes 5 minutes.
const BENCHES = ['reaction', 'burst', 'restart', 'idle', 'vmm-rpc', 'import-rss'] as const;

function runBench(name: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(import.meta.dirname, `${name}.ts`)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`bench/${name}.ts exited with ${code}`));
      try {
        resolve(JSON.parse(out));
      } catch (err) {
        reject(new Error(`bench/${name}.ts printed no single JSON object: ${(err as Error).message}`));
      }
    });
  });
}

const wanted = process.argv.slice(2);
const unknown = wanted.filter((n) => !(BENCHES as readonly string[]).includes(n));
if (unknown.length > 0) throw new Error(`unknown bench ${unknown.join(', ')}; choose from ${BENCHES.join(', ')}`);
const names = wanted.length > 0 ? wanted : [...BENCHES];
const results: Record<string, unknown> = {};
const started = new Date();
for (const name of names) {
  process.stderr.write(`bench: ${name} …\n`);
  const t0 = Date.now();
  results[name] = await runBench(name).catch((err: unknown) => ({ error: (err as Error).message }));
  process.stderr.write(`bench: ${name} done in ${Math.round((Date.now() - t0) / 1000)} s\n`);
}
const report = { startedAt: started.toISOString(), finishedAt: new Date().toISOString(), machine: describeMachine(), results };
await writeFile(join(import.meta.dirname, 'results.json'), `${JSON.stringify(report, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
