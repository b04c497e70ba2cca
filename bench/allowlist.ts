// The allowlist beside many apps (issue 18): one new hash registered, then five looks at the
// app's entry within the second after (each reads the file again: its ctime is too recent to
// trust), as a drop's deploy does; time and garbage collection per such round, in this process.
// Run: node_modules/.bin/node --optimize-for-size --max-opt=1 bench/allowlist.ts [--apps 5000] [--rounds 20]
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { openAllowlist } from '../src/auth/allowlist.ts';
import { describeMachine, numberArgs, printResult, round } from './report.ts';

const args = numberArgs({ apps: 5000, rounds: 20 });
const machine = describeMachine();
const dir = await mkdtemp(join(tmpdir(), 'bench-allowlist-'));
try {
  const path = join(dir, 'auth-config.json');
  const apps = Object.fromEntries(
    Array.from({ length: args.apps }, (_, i) => [`${(0x100000 + i).toString(16)}${'a'.repeat(34)}`, { composeHashes: ['b'.repeat(64)], devices: [], allowAnyDevice: true }]),
  );
  await writeFile(path, `${JSON.stringify({ kms: { mrAggregated: [], devices: [], allowAnyDevice: true }, osImages: [], apps }, null, 2)}\n`);
  const allowlist = openAllowlist(path);
  await allowlist.read();
  let gcMs = 0;
  let gcs = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gcMs += entry.duration;
      gcs += 1;
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  const start = performance.now();
  for (let i = 0; i < args.rounds; i++) {
    const appId = (0x900000 + i).toString(16);
    await allowlist.addHash(appId, 'c'.repeat(64));
    for (let look = 0; look < 5; look++) await allowlist.hashesOf(appId);
  }
  const ms = performance.now() - start;
  // GC entries are delivered asynchronously.
  await new Promise((resolve) => setTimeout(resolve, 100));
  observer.disconnect();
  await allowlist.close();
  printResult('allowlist', machine, {
    apps: args.apps,
    rounds: args.rounds,
    nodeFlags: process.execArgv,
    perRound: { ms: round(ms / args.rounds), gcMs: round(gcMs / args.rounds), gcs: round(gcs / args.rounds) },
  });
} finally {
  await rm(dir, { recursive: true, force: true });
}
