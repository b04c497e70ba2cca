// Two builds of the supervisor compared on one stage, interleaved (issue 18): apps.d holds
// --background port-less apps deployed once; then for each round, each program in turn is
// started on it, its resync passes timed (SIGHUP, CPU until flat) and --drops single drops
// measured, and stopped. The same host, apps and VMs for both, and the machine's load shared
// alike over the rounds.
// Run: node_modules/.bin/node bench/ab.ts --a /path/to/other/bin/dstack-supervisor.mjs
//      [--b bin/dstack-supervisor.mjs] [--background 5000] [--drops 30] [--resyncs 2] [--rounds 2]
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { openStage } from '../test/soak/stage.ts';
import { composeText, freePorts, waitUntil } from '../test/helpers/harness.ts';
import { deployBackground } from './apps.ts';
import { measureDrops } from './drops.ts';
import { cpuUntilFlat, describeMachine, percentile, printResult, sampleProcess } from './report.ts';
import { readNodeFlags } from '../src/node-flags.ts';

const { values } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string', default: join(import.meta.dirname, '..', 'bin', 'dstack-supervisor.mjs') },
    background: { type: 'string', default: '5000' },
    drops: { type: 'string', default: '30' },
    resyncs: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '2' },
    'settle-ms': { type: 'string', default: '1000' },
  },
});
if (!values.a) throw new Error('--a <bin> is required');
const bins = { a: values.a, b: values.b as string };


const machine = describeMachine();
const settleMs = Number(values['settle-ms']);
const stage = await openStage({ apps: { settle_ms: settleMs }, prefix: 'bench-ab-' });
const runs: unknown[] = [];
try {
  await deployBackground(stage, 'background', Number(values.background), { settle_ms: settleMs });
  let n = 0;
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const [label, bin] of Object.entries(bins)) {
      n += 1;
      const child = stage.spawn({ bin, nodeArgs: readNodeFlags() });
      await child.ready;
      await stage.drop(`warm-${n}.yml`, composeText((await freePorts(1))[0] as number, `warm-${n}`));
      await waitUntil(async () => (await stage.phase(`warm-${n}`)) === 'running', 'the warm-up app running', 900_000);
      await cpuUntilFlat(child.pid, (await sampleProcess(child.pid)).cpuMs);
      const resyncCpuMs: number[] = [];
      for (let i = 0; i < Number(values.resyncs); i++) {
        const start = (await sampleProcess(child.pid)).cpuMs;
        process.kill(child.pid, 'SIGHUP');
        resyncCpuMs.push(await cpuUntilFlat(child.pid, start));
      }
      const load = loadavg()[0]?.toFixed(2);
      const latencies = await measureDrops(stage, `drop-${n}`, Number(values.drops), settleMs);
      await child.kill('SIGTERM');
      const run = { round, label, resyncCpuMs, p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: Math.max(...latencies).toFixed(0), load };
      process.stderr.write(`${JSON.stringify(run)}\n`);
      runs.push(run);
    }
  }
  printResult('ab', machine, { bins, background: Number(values.background), drops: Number(values.drops), runs });
} finally {
  await stage.close();
}
