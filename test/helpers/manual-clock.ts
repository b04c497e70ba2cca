import type { Clock } from '../../src/clock.ts';

// A clock that only moves when the test says so.
export type ManualClock = Clock & { advance(ms: number): Promise<void>; pending(): number };

export function createManualClock(start = 1_000_000): ManualClock {
  let now = start;
  let seq = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  const clock: ManualClock = {
    now: () => now,
    schedule(ms, fn) {
      const id = ++seq;
      timers.set(id, { at: now + Math.max(0, ms), fn });
      return { cancel: () => void timers.delete(id) };
    },
    sleep(ms) {
      return new Promise((resolve) => clock.schedule(ms, resolve));
    },
    async advance(ms) {
      const end = now + ms;
      for (;;) {
        const due = [...timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        timers.delete(due[0]);
        now = Math.max(now, due[1].at);
        due[1].fn();
        await new Promise((r) => setImmediate(r));
      }
      now = end;
    },
    pending: () => timers.size,
  };
  return clock;
}
