// WATCHDOG=1 pings when the unit sets WatchdogSec=: systemd then passes WATCHDOG_USEC (and
// WATCHDOG_PID, the process it expects pings from) and restarts us if pings stop. The pings
// run on the event loop, so a loop wedged by a bug is what the watchdog catches.
import type { Clock } from '../clock.ts';
import type { Notifier } from './notifier.ts';

// How often to ping: half of WATCHDOG_USEC, as sd_watchdog_enabled(3) recommends; null when
// the watchdog is off or meant for another process.
export function watchdogIntervalMs(env: Readonly<Record<string, string | undefined>>, pid: number): number | null {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isSafeInteger(usec) || usec <= 0) return null;
  if (env.WATCHDOG_PID !== undefined && env.WATCHDOG_PID !== '' && Number(env.WATCHDOG_PID) !== pid) return null;
  return Math.max(1, Math.floor(usec / 2_000));
}

export type WatchdogDeps = {
  notifier: Pick<Notifier, 'enabled' | 'watchdog'>;
  env: Readonly<Record<string, string | undefined>>;
  pid: number;
  clock: Pick<Clock, 'schedule'>;
};

// Start pinging if the unit asked for it; returns the stop function (a no-op when not started).
export function startWatchdog(deps: WatchdogDeps): () => void {
  const everyMs = watchdogIntervalMs(deps.env, deps.pid);
  if (everyMs === null || !deps.notifier.enabled) return () => undefined;
  let timer = deps.clock.schedule(everyMs, tick);
  function tick(): void {
    // Schedule first: a slow helper must not stretch the interval.
    timer = deps.clock.schedule(everyMs!, tick);
    void deps.notifier.watchdog();
  }
  return () => timer.cancel();
}
