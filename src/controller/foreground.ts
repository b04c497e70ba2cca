// Work a file event asked for (an event pass, a changed app's prepare and reconcile) goes before a
// resync's (its reading of everything, its routine reconciles): those wait at their next step
// while any is under way. Node runs one thing at a time, so a drop whose settle window ended
// during a resync's reading shared the thread with it step by step (+255 ms beside 1 000 apps,
// `node bench/resync-drop.ts`; issue 18). A wait lasts at most `maxHoldMs`, so a stream of
// changes cannot keep a resync from ever finishing.
import type { Clock } from '../clock.ts';

export type Foreground = {
  // Work begins; call the returned function (once is enough) when it ends.
  enter(): () => void;
  readonly busy: boolean;
  // Resolves once no foreground work is under way, or `maxHoldMs` from now.
  clear(): Promise<void>;
};

export function createForeground(clock: Clock, maxHoldMs: number): Foreground {
  let under = 0;
  const waiters = new Set<() => void>();
  return {
    enter() {
      under += 1;
      let ended = false;
      return () => {
        if (ended) return;
        ended = true;
        under -= 1;
        if (under === 0) for (const wake of [...waiters]) wake();
      };
    },
    get busy() {
      return under > 0;
    },
    clear() {
      if (under === 0) return Promise.resolve();
      return new Promise((resolve) => {
        const wake = () => {
          waiters.delete(wake);
          timer.cancel();
          resolve();
        };
        const timer = clock.schedule(maxHoldMs, wake);
        waiters.add(wake);
      });
    },
  };
}
