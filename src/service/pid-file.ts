// `<state_dir>/pid.json`: how `dstack-supervisor resync` finds the running service (issue 15).
// It names the PID and, so that a file left by a killed process never gets another process
// signalled, the process's start time (field 22 of /proc/PID/stat, clock ticks since boot): a PID
// counts as the service only while both still match. Not the kernel's boot id as well: in the
// package test's systemd-nspawn container the service (in the mount namespace its unit's
// sandboxing gives it) and a shell read different /proc/sys/kernel/random/boot_id; a file from
// before a reboot is replaced when the service starts. A pid file, rather than asking
// systemd for MainPID, because it also finds `npm run dev` and any `run` outside systemd; the
// unit's ExecReload= passes systemd's $MAINPID itself (`resync --pid`).
import { mkdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import * as z from 'zod';
import { describeError } from '../errors.ts';
import { writeFileAtomic } from '../fsx/atomic.ts';

const PidFileSchema = z.object({ pid: z.number().int().positive(), start_time: z.string().min(1) });
type PidFile = z.infer<typeof PidFileSchema>;

// Where the pid file of the service using `stateDir` lives.
export function pidFilePath(stateDir: string): string {
  return join(stateDir, 'pid.json');
}

// What identifies process `pid` beyond its number, or undefined when there is no such process.
async function identityOf(pid: number): Promise<Omit<PidFile, 'pid'> | undefined> {
  let stat: string;
  try {
    stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  // The command name (field 2) is in parentheses and may hold spaces and ')'; fields 3.. follow
  // the last ')', so start time (field 22) is the 20th of them.
  const startTime = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  if (startTime === undefined) throw new Error(`/proc/${pid}/stat has no start time field`);
  return { start_time: startTime };
}

// Record this process as the service of `stateDir`.
export async function writePidFile(stateDir: string): Promise<void> {
  const identity = await identityOf(process.pid);
  if (identity === undefined) throw new Error(`/proc/${process.pid}/stat does not exist (is /proc mounted?)`);
  await mkdir(stateDir, { recursive: true });
  await writeFileAtomic(pidFilePath(stateDir), `${JSON.stringify({ pid: process.pid, ...identity })}\n`, { mode: 0o644 });
}

// Remove the pid file if it still names this process (a later `run` may have replaced it).
export async function removePidFile(stateDir: string): Promise<void> {
  const file = pidFilePath(stateDir);
  const recorded = await readFile(file, 'utf8').then((text) => PidFileSchema.safeParse(JSON.parse(text)).data, () => undefined);
  if (recorded?.pid === process.pid) await unlink(file).catch(() => {});
}

// The PID of the live service of `stateDir`, or why there is none (for the operator).
export async function findServicePid(stateDir: string): Promise<{ pid: number } | { none: string }> {
  const file = pidFilePath(stateDir);
  let recorded: PidFile;
  try {
    recorded = PidFileSchema.parse(JSON.parse(await readFile(file, 'utf8')));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { none: `${file} does not exist (dstack-supervisor run has not started with this state_dir)` };
    return { none: `${file} cannot be used (${describeError(err)})` };
  }
  const live = await identityOf(recorded.pid);
  if (live?.start_time !== recorded.start_time) {
    return { none: `${file} names process ${recorded.pid}, which is no longer running (the service stopped or was killed)` };
  }
  return { pid: recorded.pid };
}
