// The apps the benchmarks deploy: small compose files that differ only by a comment.
import type { Stage, StageOptions } from '../test/soak/stage.ts';
import { waitUntil } from '../test/helpers/harness.ts';

// `count` apps named `${prefix}-0` …, publishing no port: a thousand apps then need no thousand
// real listeners in the simulator, and what is measured is the supervisor.
export function portlessApps(prefix: string, count: number): Array<[string, string]> {
  return Array.from({ length: count }, (_, i) => [`${prefix}-${i}.yml`, `# ${prefix} ${i}\nservices:\n  app:\n    image: nginx:1.27\n`]);
}

// Get `count` port-less apps running on `stage` quickly ([apps] concurrency 64), then stop the
// supervisor and write supervisor.toml with `apps`, the settings to measure with.
export async function deployBackground(stage: Stage, prefix: string, count: number, apps: StageOptions['apps'] = {}): Promise<void> {
  await stage.reconfigure({ apps: { ...apps, concurrency: 64 } });
  const setup = stage.spawn();
  await setup.ready;
  await stage.dropAll(portlessApps(prefix, count));
  // 5 000 apps took over 10 minutes on the shared 2-core machine at load 5-7.
  await waitUntil(async () => ((await stage.counts()).running ?? 0) >= count, `${count} apps running`, 1_800_000);
  await setup.kill('SIGTERM');
  await stage.reconfigure({ apps });
}
