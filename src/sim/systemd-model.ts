import { EventEmitter } from 'node:events';
import { DBusError } from '../systemd/dbus.ts';
import { NO_SUCH_UNIT_ERROR } from '../systemd/errors.ts';
import type { JobMethod, JobRemoved, UnitFileChange, UnitState } from '../systemd/types.ts';

// How a simulated unit answers a start: come up, fail, or stay `activating` for ever.
export type FakeUnitBehaviour = {
  start?: 'ok' | 'fail' | 'hang';
  startDelayMs?: number;
  // Lines the unit "logs" when it fails, so error messages can be checked for them.
  failureLog?: string[];
};

// One Manager method call as the simulated systemd received it.
export type FakeCall = { method: string; args: unknown[] };

// A unit's identity and state, as emitted on every change.
export type FakeUnitView = UnitState & { name: string; path: string };

type FakeSystemdEvents = { jobRemoved: [JobRemoved]; unitChanged: [FakeUnitView] };

type FakeUnit = {
  name: string;
  path: string;
  state: UnitState;
  enabled: boolean;
  behaviour: FakeUnitBehaviour;
  journal: string[];
  job?: { id: number; path: string; timer?: NodeJS.Timeout | undefined } | undefined;
};

const UNIT_PATH_PREFIX = '/org/freedesktop/systemd1/unit/';
const JOB_PATH_PREFIX = '/org/freedesktop/systemd1/job/';

// systemd's bus_label_escape: every byte that is not [A-Za-z0-9] (and a leading digit) → _xx.
export function escapeUnitPath(name: string): string {
  const label = [...Buffer.from(name)]
    .map((byte, i) => {
      const ch = String.fromCharCode(byte);
      const plain = /[A-Za-z]/.test(ch) || (i > 0 && /[0-9]/.test(ch));
      return plain ? ch : `_${byte.toString(16).padStart(2, '0')}`;
    })
    .join('');
  return UNIT_PATH_PREFIX + (label || '_');
}

const noSuchUnit = (text: string): DBusError => new DBusError(NO_SUCH_UNIT_ERROR, text);

// The state machine behind both simulated systemds (on D-Bus and in-process). Differs from the
// real one: no dependencies between units, restart is a plain start, one subscriber flag for
// all clients, and only Manager calls are logged (property reads are not).
export class FakeSystemd extends EventEmitter<FakeSystemdEvents> {
  // Every Manager call in order, for "a re-run starts no unit" checks.
  readonly calls: FakeCall[] = [];
  private readonly units = new Map<string, FakeUnit>();
  private readonly known: Map<string, FakeUnitBehaviour>;
  private nextJobId = 1;
  private subscribed = false;

  constructor(units: Record<string, FakeUnitBehaviour>) {
    super();
    this.known = new Map(Object.entries(units));
  }

  // Change how a unit answers its next start (fault injection mid-test).
  setBehaviour(name: string, behaviour: FakeUnitBehaviour): void {
    this.known.set(name, behaviour);
    const unit = this.units.get(name);
    if (unit) unit.behaviour = behaviour;
  }

  // Calls of one Manager method, e.g. every StartUnit.
  callsOf(method: string): FakeCall[] {
    return this.calls.filter((call) => call.method === method);
  }

  // What the unit has "logged" so far, newest last.
  journal(name: string): string[] {
    return [...(this.units.get(name)?.journal ?? [])];
  }

  subscribe(): void {
    this.calls.push({ method: 'Subscribe', args: [] });
    this.subscribed = true;
  }

  loadUnit(name: string): string {
    this.calls.push({ method: 'LoadUnit', args: [name] });
    return this.load(name).path;
  }

  getUnit(name: string): string {
    this.calls.push({ method: 'GetUnit', args: [name] });
    const unit = this.units.get(name);
    // Real systemd garbage-collects an inactive unit with no job soon after any use, so GetUnit
    // on it says NoSuchUnit (docs/platform-notes.md §2); the fake does so at once, to make that trap hit.
    if (!unit || (unit.state.ActiveState === 'inactive' && !unit.job)) throw noSuchUnit(`Unit ${name} not loaded.`);
    return unit.path;
  }

  // Queue a start, stop or restart (mode `replace`: a pending job on the unit is cancelled).
  queueJob(method: JobMethod, name: string, mode: string): string {
    this.calls.push({ method, args: [name, mode] });
    const unit = this.load(name);
    if (unit.state.LoadState !== 'loaded') throw noSuchUnit(`Unit ${name} not found.`);
    if (unit.job) this.finishJob(unit, 'canceled');
    const id = this.nextJobId++;
    unit.job = { id, path: `${JOB_PATH_PREFIX}${id}` };
    if (method === 'StopUnit') this.stop(unit);
    else this.start(unit, method === 'RestartUnit');
    return unit.job.path;
  }

  enableUnitFiles(files: string[], runtime: boolean, force: boolean): [boolean, UnitFileChange[]] {
    this.calls.push({ method: 'EnableUnitFiles', args: [files, runtime, force] });
    const missing = files.find((file) => !this.known.has(file));
    if (missing !== undefined) throw noSuchUnit(`Unit file ${missing} does not exist.`);
    const changes: UnitFileChange[] = [];
    for (const file of files) {
      const unit = this.load(file);
      if (unit.enabled) continue;
      unit.enabled = true;
      changes.push(['symlink', `/etc/systemd/system/multi-user.target.wants/${file}`, `/lib/systemd/system/${file}`]);
    }
    return [true, changes];
  }

  reload(): void {
    this.calls.push({ method: 'Reload', args: [] });
  }

  // State of the unit behind an object path (what Properties.GetAll answers).
  unitStateAt(path: string): FakeUnitView | undefined {
    for (const unit of this.units.values()) if (unit.path === path) return this.view(unit);
    return undefined;
  }

  // Cancel every pending timer so a test's process can exit.
  shutdown(): void {
    for (const unit of this.units.values()) clearTimeout(unit.job?.timer);
    this.removeAllListeners();
  }

  private load(name: string): FakeUnit {
    let unit = this.units.get(name);
    if (!unit) {
      const behaviour = this.known.get(name);
      unit = {
        name,
        path: escapeUnitPath(name),
        state: { ActiveState: 'inactive', SubState: 'dead', LoadState: behaviour ? 'loaded' : 'not-found' },
        enabled: false,
        behaviour: behaviour ?? {},
        journal: [],
      };
      this.units.set(name, unit);
    }
    return unit;
  }

  private start(unit: FakeUnit, restart: boolean): void {
    if (unit.state.ActiveState === 'active' && !restart) {
      this.later(unit, 0, () => this.finishJob(unit, 'done'));
      return;
    }
    unit.journal.push(`Starting ${unit.name}...`);
    this.setState(unit, 'activating', 'start');
    const outcome = unit.behaviour.start ?? 'ok';
    if (outcome === 'hang') return;
    this.later(unit, unit.behaviour.startDelayMs ?? 0, () => {
      if (outcome === 'ok') {
        unit.journal.push(`Started ${unit.name}.`);
        this.setState(unit, 'active', 'running');
        this.finishJob(unit, 'done');
        return;
      }
      unit.journal.push(...(unit.behaviour.failureLog ?? []), `${unit.name}: Failed with result 'exit-code'.`);
      this.setState(unit, 'failed', 'failed');
      this.finishJob(unit, 'failed');
    });
  }

  private stop(unit: FakeUnit): void {
    if (unit.state.ActiveState === 'inactive') {
      this.later(unit, 0, () => this.finishJob(unit, 'done'));
      return;
    }
    unit.journal.push(`Stopping ${unit.name}...`);
    this.setState(unit, 'deactivating', 'stop-sigterm');
    this.later(unit, 0, () => {
      unit.journal.push(`Stopped ${unit.name}.`);
      this.setState(unit, 'inactive', 'dead');
      this.finishJob(unit, 'done');
    });
  }

  // Timers run after the method reply is sent, as in systemd, whose jobs run on its event loop.
  private later(unit: FakeUnit, delayMs: number, step: () => void): void {
    if (unit.job) unit.job.timer = setTimeout(step, delayMs);
  }

  private setState(unit: FakeUnit, active: string, sub: string): void {
    unit.state = { ...unit.state, ActiveState: active, SubState: sub };
    this.emit('unitChanged', this.view(unit));
  }

  private finishJob(unit: FakeUnit, result: string): void {
    const job = unit.job;
    if (!job) return;
    clearTimeout(job.timer);
    unit.job = undefined;
    // Like systemd, JobRemoved goes out only once some client called Subscribe.
    if (this.subscribed) this.emit('jobRemoved', { id: job.id, job: job.path, unit: unit.name, result });
  }

  private view(unit: FakeUnit): FakeUnitView {
    return { name: unit.name, path: unit.path, ...unit.state };
  }
}
