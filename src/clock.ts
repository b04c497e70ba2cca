// Time as a dependency: handlers and watchers take a Clock instead of calling Date.now() or
// setTimeout directly, so tests can run schedules without waiting on the wall clock.
export type TimerHandle = { cancel(): void };

export type Clock = {
  now(): number;
  // Run `fn` after `ms`; owners cancel their timers when they stop.
  schedule(ms: number, fn: () => void): TimerHandle;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
};

// The real clock.
export const systemClock: Clock = {
  now: () => Date.now(),
  schedule(ms, fn) {
    const t = setTimeout(fn, Math.max(0, ms));
    return { cancel: () => clearTimeout(t) };
  },
  sleep(ms, signal) {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const t = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, Math.max(0, ms));
      const onAbort = () => {
        clearTimeout(t);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  },
};
