// Preloaded into the supervisor by bench/idle.ts (`node --import`): records every timer callback
// the process runs (its own, node:http's, chokidar's, pino's) with the time and the timer's delay,
// and writes them as JSON to $BENCH_TIMER_PROBE_OUT on SIGUSR2, with process.memoryUsage() and
// the V8 heap spaces (what the resident set is made of). An idle service should wake up only for
// its resync; any faster timer shows here.
// Plain JavaScript, not TypeScript: preloading a .ts file makes Node load its type stripper,
// which added 17 MB to the resident set this bench measures (61.4 vs 44.1 MB for an empty
// preload in a bare Node 24 process). Built-ins come from getBuiltinModule(), not ES imports,
// whose namespaces load more of Node (all of node:fs's lazy parts), and node:v8 only for the dump,
// after the bench's last RSS sample: the probe adds 0.4 MB to a bare process (44.4 vs 44.0 MB).
const { createHook } = process.getBuiltinModule('node:async_hooks');
const { writeFileSync } = process.getBuiltinModule('node:fs');

const out = process.env.BENCH_TIMER_PROBE_OUT;
/** @type {Map<number, { delayMs: number; repeat: boolean }>} */
const timers = new Map();
/** @type {Array<{ at: number; delayMs: number; repeat: boolean }>} */
const fires = [];

if (out) {
  createHook({
    init(asyncId, type, _trigger, resource) {
      if (type !== 'Timeout') return;
      const timer = /** @type {{ _idleTimeout?: number; _repeat?: number | null }} */ (resource);
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
    const { getHeapSpaceStatistics } = process.getBuiltinModule('node:v8');
    const heapSpaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, s.space_used_size]));
    writeFileSync(out, JSON.stringify({ fires, memory: process.memoryUsage(), heapSpaces }));
  });
}
