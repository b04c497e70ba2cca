// `npm run soak -- --ops N --seed S [--seed S2 …] [--check-every K] [--shrink-minutes M]`: the chaos
// soak from the command line. Prints progress on stderr and one JSON report per seed on stdout;
// a failure also prints the seed and the shortest op sequence found that reproduces it. Exit
// status 1 if any seed failed.
import { parseArgs } from 'node:util';
import { describeFailure, runSoak } from './soak.ts';

const { values } = parseArgs({
  options: {
    ops: { type: 'string', default: '1000' },
    seed: { type: 'string', multiple: true, default: ['1'] },
    'check-every': { type: 'string', default: '40' },
    'shrink-minutes': { type: 'string', default: '20' },
  },
});
const number = (name: string, raw: string) => {
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} wants a whole number, not ${JSON.stringify(raw)}`);
  return n;
};

let failed = false;
for (const seed of values.seed.map((s) => number('seed', s))) {
  const report = await runSoak({
    ops: number('ops', values.ops),
    seed,
    checkEvery: number('check-every', values['check-every']),
    shrinkBudgetMs: number('shrink-minutes', values['shrink-minutes']) * 60_000,
    progress: (line) => process.stderr.write(`soak seed ${seed}: ${line}\n`),
  });
  const { failure, ...summary } = report;
  process.stdout.write(`${JSON.stringify({ ...summary, ok: !failure }, null, 2)}\n`);
  if (failure) {
    failed = true;
    process.stdout.write(`${describeFailure(report)}\n`);
  }
}
process.exitCode = failed ? 1 : 0;
