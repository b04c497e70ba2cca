// Single drops, as bench/reaction.ts and bench/curve.ts measure them: each a new app publishing one
// real (free) port, dropped with a rename; the time is until the (simulated) VMM receives its
// CreateVm. The next drop waits until the app reports `running`, then a random 0–100 ms so drops
// do not line up with the supervisor's timers.
import { performance } from 'node:perf_hooks';
import type { Stage } from '../test/soak/stage.ts';
import { composeText, freePorts, waitUntil } from '../test/helpers/harness.ts';
import { round } from './report.ts';

// performance.now() when the (simulated) VMM has received the CreateVm of app `name`. The VMs are
// looked at by name (Status's keyword filter), so the time taken is not the bench's own rendering
// of every VM beside it (~30 ms beside 5 000, and counted as the supervisor's before).
export function createVmReceived(stage: Stage, name: string, timeoutMs: number): Promise<number> {
  let receivedAt = 0;
  return stage.sim.state
    .waitFor(
      (vms) => {
        if (!vms.some((v) => v.name === name)) return false;
        receivedAt = performance.now();
        return true;
      },
      timeoutMs,
      { keyword: name, brief: true },
    )
    .then(() => receivedAt);
}

// Drop `count` apps named `${prefix}-0` … one after another; resolves with each drop's latency (ms).
// `droppedAt`, when given, gets each drop's performance.now().
export async function measureDrops(stage: Stage, prefix: string, count: number, settleMs: number, droppedAt?: number[]): Promise<number[]> {
  const ports = await freePorts(count);
  const latencies: number[] = [];
  for (let i = 0; i < count; i++) {
    const name = `${prefix}-${i}`;
    const created = createVmReceived(stage, name, settleMs + 30_000);
    await stage.drop(`${name}.yml`, composeText(ports[i] as number, name));
    const at = performance.now();
    droppedAt?.push(at);
    latencies.push((await created) - at);
    await waitUntil(async () => (await stage.phase(name)) === 'running', `${name} running`, 30_000);
    await new Promise((r) => setTimeout(r, Math.random() * 100));
  }
  return latencies;
}

// The three slowest drops, each with its time since the supervisor was ready (resyncs come every
// resync_s from then), to tell one that met a resync.
export function slowestDrops(latencies: readonly number[], droppedAt: readonly number[], readyAt: number): Array<{ drop: number; ms: number; secondsSinceReady: number }> {
  return latencies
    .map((ms, i) => ({ drop: i, ms: round(ms), secondsSinceReady: round(((droppedAt[i] as number) - readyAt) / 1000) }))
    .sort((a, b) => b.ms - a.ms)
    .slice(0, 3);
}
