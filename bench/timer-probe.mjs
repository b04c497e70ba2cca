// Preloaded into the supervisor by bench/idle.ts (`node --import`): records every timer callback
// the process runs (its own, undici's, chokidar's, pino's) with the time and the timer's delay,
// and writes them as JSON to $BENCH_TIMER_PROBE_OUT on SIGUSR2, with process.memoryUsage() and
// the V8 heap spaces (what the resident set is made of). An idle service should wake up only for its resync; any faster
// timer shows here.
import { createHook } from 'node:async_hooks';
import { writeFileSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';

type Fire = { at: number; delayMs: number; repeat: boolean };

const out = process.env.BENCH_TIMER_PROBE_OUT;
const timers = new Map<number, { delayMs: number; repeat: boolean }>();
const fires: Fire[] = [];

if (out) {
  createHook({
    init(asyncId, type, _trigger, resource) {
      if (type !== 'Timeout') return;
      const timer = resource as { _idleTimeout?: number; _repeat?: number | null };
      timers.set(asyncId, { delayMs: timer._idleTimeout ?? -1, repeat: typeof timer._repeat === 'number' });
    },
    before(asyncId) {
      const timer = timers.get(asyncId);
      if (timer) fires.push({ at: Date.now(), ...timer });
    },
    destroy(asyncId) {
      timers.delete(asyncId);
    },
  }).enable();
  process.on('SIGUSR2', () => {
    const heapSpaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, s.space_used_size]));
    writeFileSync(out, JSON.stringify({ fires, memory: process.memoryUsage(), heapSpaces }));
  });
}
