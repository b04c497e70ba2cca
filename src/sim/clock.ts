// Time for the simulator, injected so state-machine tests can step it by hand, and a scheduler
// that remembers every pending timer so stopping the simulated host leaves nothing behind.

// The clock the simulator reads and schedules with.
export type SimClock = {
  now: () => number;
  setTimeout: (fn: () => void, ms: number) => unknown;
  clearTimeout: (handle: unknown) => void;
};

// Wall-clock time and Node's timers.
export const realClock: SimClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

// Timers that can all be cancelled at once.
export class Scheduler {
  readonly clock: SimClock;
  private readonly pending = new Set<unknown>();
  private disposed = false;

  constructor(clock: SimClock) {
    this.clock = clock;
  }

  // Run `fn` after `ms`, unless dispose() comes first.
  after(ms: number, fn: () => void): void {
    if (this.disposed) return;
    const handle = this.clock.setTimeout(() => {
      this.pending.delete(handle);
      fn();
    }, ms);
    this.pending.add(handle);
  }

  // Cancel every pending timer and refuse new ones.
  dispose(): void {
    this.disposed = true;
    for (const handle of this.pending) this.clock.clearTimeout(handle);
    this.pending.clear();
  }
}
