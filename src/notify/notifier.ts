// sd_notify for a Node service. Node has no AF_UNIX datagram sockets (dgram only knows udp4 and
// udp6, docs/platform-notes.md §6), so each message is sent by spawning systemd-notify directly, with an
// argument array and no shell:
// - as root, systemd-notify (252) sends with its parent's PID in SCM_CREDENTIALS, i.e. ours, so
//   the unit can keep NotifyAccess=main; a shell in between would make the shell the sender;
// - without --no-block it then sends BARRIER=1 and waits (at most 5 s) until the manager has
//   processed the message. We keep that wait: the exit status then means "systemd has it", and
//   it is what makes NotifyAccess=all work when not root (the manager must still see the
//   sender alive). systemd drops BARRIER=1 before its NotifyAccess= check
//   (manager_process_barrier_fd), so the barrier coming from the helper's own PID is not
//   refused or warned about. It costs ~25 ms per message, off the event loop; messages coalesce.
// NOTIFY_SOCKET is passed through untouched, so the abstract form (`@name`) works too.
// node:child_process rather than execa: one short-lived helper needs no more, and execa imported
// alone added 9.6 MB to a bare Node 24 process (esbuild bundle, 57.4 vs 47.8 MB; about 3 MB of it
// is node:child_process, still loaded), against the idle RSS goal of 70 MB (issue 5).
import { execFile } from 'node:child_process';
import { describeError, SupervisorError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';

export type NotifyDeps = {
  // The service's environment: NOTIFY_SOCKET (and, for the watchdog, WATCHDOG_*).
  env: Readonly<Record<string, string | undefined>>;
  log: Logger;
  // The helper to spawn; systemd-notify from PATH unless a test points elsewhere.
  command?: string;
  // Kill a helper that hangs past this; the barrier itself gives up after 5 s.
  timeoutMs?: number;
};

export type Notifier = {
  // False when NOTIFY_SOCKET is unset (not run by systemd): every call is then a no-op.
  readonly enabled: boolean;
  // READY=1, with the first STATUS= line in the same datagram.
  ready(status?: string): Promise<void>;
  // STATUS=…; while a message is in flight only the latest pending status is kept.
  status(text: string): Promise<void>;
  // STOPPING=1 when SIGTERM starts the shutdown.
  stopping(status?: string): Promise<void>;
  // WATCHDOG=1, one keep-alive ping.
  watchdog(): Promise<void>;
};

// The code of a failed notification; it is logged, never thrown.
export const NOTIFY_FAILED = 'NOTIFY_FAILED';

const DEFAULT_TIMEOUT_MS = 10_000;

// Create the notifier. The returned promises resolve once the message (or a later one merged
// with it) has been handed to systemd, or its failure has been logged; they never reject.
export function createNotifier(deps: NotifyDeps): Notifier {
  const socket = deps.env.NOTIFY_SOCKET;
  const enabled = socket !== undefined && socket !== '';
  const command = deps.command ?? 'systemd-notify';
  const timeout = deps.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  // At most one helper runs; messages sent meanwhile merge here, later STATUS= replacing earlier.
  let pending: Map<string, string> | null = null;
  let draining: Promise<void> | null = null;

  async function deliver(message: Map<string, string>): Promise<void> {
    const args = [...message].map(([key, value]) => `${key}=${value}`);
    try {
      await runHelper(command, args, { ...process.env, NOTIFY_SOCKET: socket }, timeout);
    } catch (err) {
      const problem = new SupervisorError(
        NOTIFY_FAILED,
        `sd_notify: sending ${args.join(' ')} with ${command} failed: ${helperError(err)}; systemd did not get the update ` +
          `(check NOTIFY_SOCKET=${socket} and NotifyAccess= in the unit)`,
        { cause: err },
      );
      deps.log[message.has('READY') ? 'error' : 'warn']({ err: problem }, problem.message);
    }
  }

  async function drain(): Promise<void> {
    while (pending !== null) {
      const message = pending;
      pending = null;
      await deliver(message);
    }
    draining = null;
  }

  function send(assignments: Array<[string, string]>): Promise<void> {
    if (!enabled) return Promise.resolve();
    pending ??= new Map();
    for (const [key, value] of assignments) pending.set(key, value);
    draining ??= drain();
    return draining;
  }

  return {
    enabled,
    ready: (status) => send([['READY', '1'], ...statusField(status)]),
    status: (text) => send(statusField(text)),
    stopping: (status) => send([['STOPPING', '1'], ...statusField(status)]),
    watchdog: () => send([['WATCHDOG', '1']]),
  };
}

// A helper that fails: its stderr, and whether the timeout killed it.
type HelperFailure = Error & { stderr: string; killed: boolean };

// Run `command args` with no shell and stdin closed; rejects with a HelperFailure on a non-zero
// exit, a kill after `timeoutMs`, or a spawn error (ENOENT).
function runHelper(command: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, args, { env, timeout: timeoutMs }, (err, _stdout, stderr) => {
      if (err === null) resolve();
      else reject(Object.assign(err, { stderr: String(stderr), killed: child.killed }));
    });
    child.stdin?.end();
  });
}

// systemd-notify's own one-line complaint when it made one, else what went wrong with it.
function helperError(err: unknown): string {
  const failure = err as Partial<HelperFailure>;
  const stderr = typeof failure.stderr === 'string' ? failure.stderr.trim() : '';
  if (stderr !== '') return stderr;
  if (failure.killed === true) return 'it did not exit in time and was killed';
  return describeError(err).split('\n')[0] ?? '';
}

// The datagram is newline-separated assignments, so a status must stay on one line.
function statusField(text: string | undefined): Array<[string, string]> {
  return text === undefined ? [] : [['STATUS', text.replace(/\s*\n\s*/g, ' ')]];
}
