import * as z from 'zod';

// The three states the supervisor reads off an `org.freedesktop.systemd1.Unit` object.
export const UnitStateSchema = z.object({
  ActiveState: z.string(),
  SubState: z.string(),
  LoadState: z.string(),
});

export type UnitState = z.infer<typeof UnitStateSchema>;

// One row of EnableUnitFiles' `a(sss)` reply: change type, symlink path, its target.
export const UnitFileChangeSchema = z.tuple([z.string(), z.string(), z.string()]);

export type UnitFileChange = z.infer<typeof UnitFileChangeSchema>;

// `JobRemoved(uoss)`: systemd's word on how a queued job ended (`done` is the only success).
export type JobRemoved = { id: number; job: string; unit: string; result: string };

// Manager methods that queue a job and answer with its object path.
export type JobMethod = 'StartUnit' | 'StopUnit' | 'RestartUnit';

// A stream of signals that buffers what arrives before anyone waits, so no signal is lost
// between queueing a job and starting to wait for it.
export type SignalWatch<T> = {
  next(signal: AbortSignal): Promise<T>;
  close(): void;
};

// The wire operations the manager needs from systemd: the D-Bus backend speaks them to a real
// (or fake) `org.freedesktop.systemd1`, the simulator answers them in-process.
export type SystemdBackend = {
  subscribe(): Promise<void>;
  watchJobs(): Promise<SignalWatch<JobRemoved>>;
  watchUnit(unitPath: string): Promise<SignalWatch<void>>;
  queueJob(method: JobMethod, name: string): Promise<string>;
  loadUnit(name: string): Promise<string>;
  readUnitState(unitPath: string): Promise<UnitState>;
  enableUnitFiles(names: string[]): Promise<UnitFileChange[]>;
  reload(): Promise<void>;
  close(): Promise<void>;
};

// What init and destroy use to drive systemd; every failure is a `SystemdError`.
export type SystemdManager = {
  enableUnits(names: string[]): Promise<UnitFileChange[]>;
  startUnit(name: string): Promise<void>;
  restartUnit(name: string): Promise<void>;
  stopUnit(name: string): Promise<void>;
  unitState(name: string): Promise<UnitState>;
  close(): Promise<void>;
};

// Reads a unit's last journal lines for an error message; must not throw.
export type ReadJournal = (unit: string) => Promise<string[]>;
