import type { SignalWatch } from './types.ts';

// The feeding side of a SignalWatch: the backend pushes signals or a fatal error into it.
export type SignalFeed<T> = {
  push(value: T): void;
  fail(err: unknown): void;
  watch: SignalWatch<T>;
};

// Create a buffered one-reader watch; `onClose` lets the backend drop its match rule.
export function createSignalFeed<T>(onClose: () => void): SignalFeed<T> {
  const buffered: { value: T }[] = [];
  let failure: { err: unknown } | undefined;
  let waiter: { resolve: (value: T) => void; reject: (err: unknown) => void } | undefined;
  let closed = false;

  const settle = (): void => {
    if (!waiter) return;
    const current = waiter;
    const next = buffered.shift();
    if (next) {
      waiter = undefined;
      current.resolve(next.value);
    } else if (failure) {
      waiter = undefined;
      current.reject(failure.err);
    }
  };

  const watch: SignalWatch<T> = {
    next(signal) {
      return new Promise<T>((resolve, reject) => {
        if (signal.aborted) {
          reject(signal.reason);
          return;
        }
        const onAbort = (): void => {
          waiter = undefined;
          reject(signal.reason);
        };
        signal.addEventListener('abort', onAbort, { once: true });
        waiter = {
          resolve: (value) => {
            signal.removeEventListener('abort', onAbort);
            resolve(value);
          },
          reject: (err) => {
            signal.removeEventListener('abort', onAbort);
            reject(err);
          },
        };
        settle();
      });
    },
    close() {
      if (closed) return;
      closed = true;
      onClose();
    },
  };

  return {
    push(value) {
      if (closed) return;
      buffered.push({ value });
      settle();
    },
    fail(err) {
      failure ??= { err };
      settle();
    },
    watch,
  };
}
