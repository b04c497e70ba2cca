import { createSystemdManager } from '../systemd/manager.ts';
import type { SystemdManagerOptions } from '../systemd/manager.ts';
import { createSignalFeed } from '../systemd/signal-watch.ts';
import type { JobRemoved, SystemdBackend, SystemdManager } from '../systemd/types.ts';
import type { FakeSystemd, FakeUnitView } from './systemd-model.ts';

// The wire side of systemd answered in-process by `model`, for `npm run dev` where no bus exists.
export function createInProcessBackend(model: FakeSystemd): SystemdBackend {
  return {
    async subscribe() {
      model.subscribe();
    },
    async watchJobs() {
      const onJob = (removed: JobRemoved): void => feed.push(removed);
      const feed = createSignalFeed<JobRemoved>(() => model.off('jobRemoved', onJob));
      model.on('jobRemoved', onJob);
      return feed.watch;
    },
    async watchUnit(unitPath) {
      const onChange = (view: FakeUnitView): void => {
        if (view.path === unitPath) feed.push();
      };
      const feed = createSignalFeed<void>(() => model.off('unitChanged', onChange));
      model.on('unitChanged', onChange);
      return feed.watch;
    },
    async queueJob(method, name) {
      return model.queueJob(method, name, 'replace');
    },
    async loadUnit(name) {
      return model.loadUnit(name);
    },
    async readUnitState(unitPath) {
      const view = model.unitStateAt(unitPath);
      if (!view) throw new Error(`no unit object at ${unitPath}; load the unit first`);
      return { ActiveState: view.ActiveState, SubState: view.SubState, LoadState: view.LoadState };
    },
    async enableUnitFiles(names) {
      return model.enableUnitFiles(names, false, false)[1];
    },
    async reload() {
      model.reload();
    },
    async close() {},
  };
}

// An in-process systemd with the same interface (and the same job-waiting code) as the D-Bus one;
// journal lines come from the model unless `options` says otherwise.
export function createSimSystemd(model: FakeSystemd, options: SystemdManagerOptions = {}): SystemdManager {
  return createSystemdManager(createInProcessBackend(model), {
    timeoutMs: options.timeoutMs,
    readJournal: options.readJournal ?? (async (unit) => model.journal(unit)),
  });
}
