import { SupervisorError } from '../errors.ts';
import { NameFlag, RequestNameReply, dbusInterface, sessionBus } from '../systemd/dbus.ts';
import type { MessageBus } from '../systemd/dbus.ts';
import type { JobRemoved, UnitFileChange } from '../systemd/types.ts';
import type { FakeSystemd, FakeUnitView } from './systemd-model.ts';

const SYSTEMD = 'org.freedesktop.systemd1';
const MANAGER_PATH = '/org/freedesktop/systemd1';

// The Manager object: each method hands its arguments to the model, which throws the same
// D-Bus errors real systemd does (org.freedesktop.systemd1.NoSuchUnit).
class ManagerInterface extends dbusInterface.Interface {
  readonly model: FakeSystemd;
  readonly exportUnit: (path: string) => void;
  constructor(model: FakeSystemd, exportUnit: (path: string) => void) {
    super('org.freedesktop.systemd1.Manager');
    this.model = model;
    this.exportUnit = exportUnit;
  }
  Subscribe(): void {
    this.model.subscribe();
  }
  LoadUnit(name: string): string {
    return this.exported(this.model.loadUnit(name));
  }
  GetUnit(name: string): string {
    return this.exported(this.model.getUnit(name));
  }
  StartUnit(name: string, mode: string): string {
    return this.model.queueJob('StartUnit', name, mode);
  }
  StopUnit(name: string, mode: string): string {
    return this.model.queueJob('StopUnit', name, mode);
  }
  RestartUnit(name: string, mode: string): string {
    return this.model.queueJob('RestartUnit', name, mode);
  }
  EnableUnitFiles(files: string[], runtime: boolean, force: boolean): [boolean, UnitFileChange[]] {
    return this.model.enableUnitFiles(files, runtime, force);
  }
  Reload(): void {
    this.model.reload();
  }
  JobRemoved(removed: JobRemoved): [number, string, string, string] {
    return [removed.id, removed.job, removed.unit, removed.result];
  }
  private exported(path: string): string {
    this.exportUnit(path);
    return path;
  }
}

const job = { inSignature: 'ss', outSignature: 'o' };
ManagerInterface.configureMembers({
  methods: {
    Subscribe: {},
    LoadUnit: { inSignature: 's', outSignature: 'o' },
    GetUnit: { inSignature: 's', outSignature: 'o' },
    StartUnit: { ...job },
    StopUnit: { ...job },
    RestartUnit: { ...job },
    EnableUnitFiles: { inSignature: 'asbb', outSignature: 'ba(sss)' },
    Reload: {},
  },
  signals: { JobRemoved: { signature: 'uoss' } },
});

// One `org.freedesktop.systemd1.Unit` object; its properties read the model live.
class UnitInterface extends dbusInterface.Interface {
  readonly model: FakeSystemd;
  readonly path: string;
  constructor(model: FakeSystemd, path: string) {
    super('org.freedesktop.systemd1.Unit');
    this.model = model;
    this.path = path;
  }
  private get view(): FakeUnitView | undefined {
    return this.model.unitStateAt(this.path);
  }
  get Id(): string | undefined {
    return this.view?.name;
  }
  get ActiveState(): string | undefined {
    return this.view?.ActiveState;
  }
  get SubState(): string | undefined {
    return this.view?.SubState;
  }
  get LoadState(): string | undefined {
    return this.view?.LoadState;
  }
}

const readOnly = { signature: 's', access: 'read' } as const;
UnitInterface.configureMembers({
  properties: { Id: { ...readOnly }, ActiveState: { ...readOnly }, SubState: { ...readOnly }, LoadState: { ...readOnly } },
});

// A running fake systemd on a bus; `stop()` leaves the bus and the model as they are.
export type FakeSystemdService = { stop(): Promise<void> };

// Serve `model` as org.freedesktop.systemd1 on the bus at `address` (e.g. a private bus).
export async function exportFakeSystemd(model: FakeSystemd, address: string): Promise<FakeSystemdService> {
  const bus: MessageBus = sessionBus({ busAddress: address });
  bus.on('error', () => undefined);
  const units = new Map<string, UnitInterface>();
  const exportUnit = (path: string): UnitInterface => {
    let unit = units.get(path);
    if (!unit) {
      unit = new UnitInterface(model, path);
      units.set(path, unit);
      bus.export(path, unit);
    }
    return unit;
  };
  const manager = new ManagerInterface(model, exportUnit);
  bus.export(MANAGER_PATH, manager);

  const onJobRemoved = (removed: JobRemoved): void => {
    manager.JobRemoved(removed);
  };
  const onUnitChanged = (view: FakeUnitView): void => {
    const { ActiveState, SubState, LoadState } = view;
    dbusInterface.Interface.emitPropertiesChanged(exportUnit(view.path), { ActiveState, SubState, LoadState }, []);
  };
  model.on('jobRemoved', onJobRemoved);
  model.on('unitChanged', onUnitChanged);
  let owned = false;
  let stopped: Promise<void> | undefined;
  // Give the name back before leaving, so a caller right after stop() sees ServiceUnknown rather
  // than a call that raced the disconnect (NoReply). dbus-next never settles a call on a dead
  // socket, only emits 'error', so that ends the wait too.
  const releaseName = (): Promise<void> =>
    new Promise<void>((resolve) => {
      bus.once('error', () => resolve());
      bus.releaseName(SYSTEMD).then(() => resolve(), () => resolve());
    });
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      model.off('jobRemoved', onJobRemoved);
      model.off('unitChanged', onUnitChanged);
      if (owned) await releaseName();
      bus.disconnect();
    })();
    return stopped;
  };

  const reply = await bus.requestName(SYSTEMD, NameFlag.DO_NOT_QUEUE).catch(async (err: unknown) => {
    await stop();
    throw new SupervisorError('SIM_SYSTEMD_EXPORT', `fake systemd: cannot take ${SYSTEMD} on ${address}: ${String(err)}`, { cause: err });
  });
  if (reply !== RequestNameReply.PRIMARY_OWNER) {
    await stop();
    throw new SupervisorError('SIM_SYSTEMD_EXPORT', `fake systemd: ${SYSTEMD} is already owned on ${address}; stop the other owner first`);
  }
  owned = true;
  return { stop };
}
