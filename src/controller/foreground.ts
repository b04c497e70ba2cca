// Work a file event asked for (an event pass, a changed app's prepare and reconcile) goes before a
// resync's (its reading of everything, its pass, its thousands of no-op reconciles): those wait
// while any is under way. Node runs one thing at a time, so a drop whose settle window ended
// during a resync shared the thread with it step by step (+1.6 s beside 5 000 apps, `node
// bench/resync-drop.ts`; issue 18). The wait lasts at most the first `maxHoldMs` of a stretch of
// foreground work: a long operation (an upgrade waiting for its VM to stop) or a stream of changes
// cannot keep a resync from its work for longer.
import type { Clock } from '../clock.ts';

export type Foreground = {
  // Work begins; call the returned function (once is enough) when it ends.
  enter(): () => void;
  // Foreground work is under way and began less than `maxHoldMs` ago (the stretch of it did).
  readonly holding: boolean;
  // Resolves once `holding` is false.
  clear(): Promise<void>;
};

export function createForeground(clock: Clock, maxHoldMs: number): Foreground {
  let under = 0;
  // When the stretch of foreground work under way began.
  let since = 0;
  const waiters = new Set<() => void>();
  const holdLeft = () => (under === 0 ? 0 : since + maxHoldMs - clock.now());
  return {
    enter() {
      if (under === 0) since = clock.now();
      under += 1;
      let ended = false;
      return () => {
        if (ended) return;
        ended = true;
        under -= 1;
        if (under === 0) for (const wake of [...waiters]) wake();
      };
    },
    get holding() {
      return holdLeft() > 0;
    },
    clear() {
      const left = holdLeft();
      if (left <= 0) return Promise.resolve();
      return new Promise((resolve) => {
        const wake = () => {
          waiters.delete(wake);
          timer.cancel();
          resolve();
        };
        const timer = clock.schedule(left, wake);
        waiters.add(wake);
      });
    },
  };
}
