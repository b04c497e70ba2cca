// A Debian root booted with systemd-nspawn under a real systemd, reached with nsenter. The host
// has no systemd as PID 1, so nspawn needs --register=no --keep-unit (docs/platform-notes.md §2), and
// the private network keeps the simulated apps' ports off the host's.
import { execa, type ResultPromise } from 'execa';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

// What a command run in the container gave back.
export type ExecResult = { exitCode: number; stdout: string; stderr: string };

export type Container = {
  // The container's PID 1 (systemd), as the host sees it.
  readonly leader: number;
  // Run argv inside every namespace of the container; never throws on a non-zero exit.
  exec(argv: string[], options?: { timeoutMs?: number }): Promise<ExecResult>;
  // Kill PID 1 (which takes the whole container with it) and wait for nspawn to exit.
  stop(): Promise<void>;
};

// A clean environment for commands in the container: nothing of the test's leaks in.
const CONTAINER_ENV = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  LANG: 'C.UTF-8',
  DEBIAN_FRONTEND: 'noninteractive',
  SYSTEMD_COLORS: '0',
  SYSTEMD_PAGER: '',
};

const POLL_MS = 50;

// Poll `probe` every 50 ms until it returns a value, or fail with `what` after `timeoutMs`.
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? '' : `: ${String(last)}`}`);
    }
    await delay(POLL_MS);
  }
}

// The descendant of `pid` that is PID 1 of a new PID namespace: the container's systemd.
async function findLeader(pid: number): Promise<number | undefined> {
  const children = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  for (const child of children.split(/\s+/).filter(Boolean).map(Number)) {
    const status = await readFile(`/proc/${child}/status`, 'utf8').catch(() => '');
    if (/^NSpid:\s+\d+\s+1$/m.test(status)) return child;
    const deeper = await findLeader(child);
    if (deeper !== undefined) return deeper;
  }
  return undefined;
}

// True once the process has exec'd systemd, i.e. its root is the container's.
async function runsSystemd(pid: number): Promise<boolean> {
  return (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim() === 'systemd';
}

// Boot `root` and wait until its systemd reports the boot finished (running or degraded).
export async function bootContainer(root: string, timeoutMs: number): Promise<Container> {
  const nspawn: ResultPromise = execa(
    'systemd-nspawn',
    ['-D', root, '--register=no', '--keep-unit', '--console=passive', '--private-network', '-b'],
    { reject: false, stdin: 'ignore', all: true },
  );
  let exited = false;
  const done = nspawn.then((result) => {
    exited = true;
    return result;
  });
  const nspawnPid = nspawn.pid;
  if (nspawnPid === undefined) throw new Error('systemd-nspawn did not start');
  let leader: number | undefined;

  const exec = async (argv: string[], options: { timeoutMs?: number } = {}): Promise<ExecResult> => {
    if (leader === undefined) throw new Error('the container has no PID 1 yet');
    const result = await execa('nsenter', ['-t', String(leader), '-a', ...argv], {
      reject: false,
      stdin: 'ignore',
      env: CONTAINER_ENV,
      extendEnv: false,
      timeout: options.timeoutMs ?? 60_000,
    });
    return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
  };

  const stop = async (): Promise<void> => {
    if (leader !== undefined && !exited) process.kill(leader, 'SIGKILL');
    if (!exited) {
      const timer = setTimeout(() => nspawn.kill('SIGKILL'), 10_000);
      await done;
      clearTimeout(timer);
    }
  };

  try {
    leader = await waitFor('systemd-nspawn to start the container', timeoutMs, async () => {
      if (exited) throw new Error(`systemd-nspawn exited: ${(await done).all}`);
      const found = await findLeader(nspawnPid);
      return found !== undefined && (await runsSystemd(found)) ? found : undefined;
    });
    // Until systemd's own socket is up, systemctl fails at once instead of waiting.
    await waitFor('the container to finish booting', timeoutMs, async () => {
      const state = (await exec(['systemctl', 'is-system-running', '--wait'], { timeoutMs })).stdout.trim();
      return ['running', 'degraded'].includes(state) ? state : undefined;
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { leader, exec, stop };
}

// Every path below `root`, relative to it. Symlinks are listed, never followed: the root's
// absolute links (/var/run -> /run, /dev/fd) would lead into the host.
export async function listTree(root: string, dir = ''): Promise<Set<string>> {
  const paths = new Set<string>();
  for (const entry of await readdir(join(root, dir), { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    paths.add(path);
    if (entry.isDirectory()) for (const below of await listTree(root, path)) paths.add(below);
  }
  return paths;
}
