// SIGHUP in `run` (`systemctl reload dstack-supervisor`, `dstack-supervisor resync`): a full
// resync now, as the periodic one, and supervisor.toml read again only to say which changed keys
// wait for a restart. Nothing is applied live: every key feeds something built once at start (the
// VMM client, the scanner, the timers), and half-applied settings are worse than none (issue 15).
import { changedConfigKeys, loadConfigWithSource, type Config } from '../config.ts';
import { describeError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';

export type Hangups = {
  // From now on SIGHUP calls `reload`; until then it is logged (init or the first pass runs).
  serve(reload: () => Promise<void>): void;
  // The service is stopping: SIGHUP is logged and ignored.
  stop(): void;
};

// Install the SIGHUP handler at once: Node's default for SIGHUP ends the process, so a reload
// that arrives while init runs must already find the handler.
export function handleHangups(log: Logger): Hangups {
  let state: 'starting' | 'stopping' | { reload: () => Promise<void> } = 'starting';
  process.on('SIGHUP', () => {
    if (state === 'starting') log.info('SIGHUP: still starting; the first pass after start looks at every app anyway');
    else if (state === 'stopping') log.info('SIGHUP: stopping; ignored');
    else void state.reload().catch((err: unknown) => log.error({ err }, `SIGHUP: ${describeError(err)}`));
  });
  return {
    serve: (reload) => (state = { reload }),
    stop: () => (state = 'stopping'),
  };
}

export type ReloadOptions = {
  // --config as `run` was given it (undefined: DSTACK_SUPERVISOR_CONFIG or the default path).
  configFile: string | undefined;
  // The configuration as read at start, before the simulated host or init filled anything in.
  started: Config;
  // Ask the supervisor for a full pass.
  resync: () => void;
  log: Logger;
};

// What SIGHUP does once the service runs.
export async function reloadService(options: ReloadOptions): Promise<void> {
  const { log } = options;
  log.info('SIGHUP: resyncing every app and VM now');
  options.resync();
  let next;
  try {
    next = await loadConfigWithSource(options.configFile);
  } catch (err) {
    log.warn(`SIGHUP: ${describeError(err)}; the service keeps the configuration it started with: fix the file before the next restart`);
    return;
  }
  const { path } = next.source;
  const changed = changedConfigKeys(options.started, next.config);
  if (changed.length === 0) {
    log.info({ FILE: path }, `SIGHUP: ${path} unchanged`);
    return;
  }
  log.warn(
    { FILE: path },
    `SIGHUP: ${path} changed ${changed.join(', ')}; not applied: restart the service to apply (systemctl restart dstack-supervisor; running apps keep running)`,
  );
}
