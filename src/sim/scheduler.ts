// Timers of the simulated host, on the project's injectable Clock, remembered so that stopping
// the host cancels every pending one and leaves nothing to keep a test process alive.
import type { Clock, TimerHandle } from '../clock.ts';

// A Clock wrapper whose timers can all be cancelled at once.
export class Scheduler {
  readonly clock: Clock;
  private readonly pending = new Set<TimerHandle>();
  private disposed = false;

  constructor(clock: Clock) {
    this.clock = clock;
  }

  // Run `fn` after `ms`, unless dispose() comes first.
  after(ms: number, fn: () => void): void {
    if (this.disposed) return;
    const handle = this.clock.schedule(ms, () => {
      this.pending.delete(handle);
      fn();
    });
    this.pending.add(handle);
  }

  // Resolve after `ms`; never resolves once disposed (the host is gone, nobody waits).
  sleep(ms: number): Promise<void> {
    return ms <= 0 ? Promise.resolve() : new Promise((resolve) => this.after(ms, resolve));
  }

  // Cancel every pending timer and refuse new ones.
  dispose(): void {
    this.disposed = true;
    for (const handle of this.pending) handle.cancel();
    this.pending.clear();
  }
}
