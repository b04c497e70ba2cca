// Which apps an event pass plans (issue 18). An app is planned again when its listing or its
// managed entry is another object than at the last pass (listApps and the managed index keep an
// unchanged app's object), when its verdict waits on time or on other apps' (a delete being
// confirmed, a file settling, a teardown, a rename's note), and when it is tied to other apps
// (host ports, GPUs: its verdict can change with theirs, so all of them are planned together).
// Every other app keeps its verdict. A full pass plans every app.
import type { AppVerdict, ListedApp, ManagedApp } from './desired.ts';

export type PlanScope<S> = {
  // The names an event pass plans, or undefined for every app: two or more managed apps gone at
  // once are for the mass-teardown guard (rule 13), which counts every app.
  narrow(apps: readonly ListedApp[], managed: ReadonlyMap<string, ManagedApp>): Set<string> | undefined;
  // A pass plans every app from these.
  all(apps: readonly ListedApp[], managed: ReadonlyMap<string, ManagedApp>): void;
  // What the plan of `within` (undefined: every app) found.
  planned(verdicts: ReadonlyMap<string, AppVerdict<S>>, coupled: ReadonlySet<string>, within: ReadonlySet<string> | undefined): void;
  // The file of a listed app, as of the last pass.
  fileOf(name: string): string | undefined;
  // Forget what was planned (a pass failed half way): the next pass plans every app.
  reset(): void;
};

// A verdict that the next pass may change with nothing else changed.
function unsteady<S>(v: AppVerdict<S>): boolean {
  if (v.kind === 'gone') return true;
  if (v.kind === 'app') return v.renamedFrom !== undefined;
  return v.why === 'delete-pending' || v.why === 'unsettled';
}

export function createPlanScope<S>(): PlanScope<S> {
  const listed = new Map<string, ListedApp>();
  const owned = new Map<string, ManagedApp>();
  let coupled = new Set<string>();
  const unsteadyNames = new Set<string>();

  function record(apps: readonly ListedApp[], managed: ReadonlyMap<string, ManagedApp>, within: Set<string>): void {
    for (const app of apps) {
      if (listed.get(app.name) === app) continue;
      within.add(app.name);
      listed.set(app.name, app);
    }
    // Every listed name is in `listed` now: more there means some are listed no more.
    if (listed.size !== apps.length) {
      const present = new Set(apps.map((a) => a.name));
      for (const name of listed.keys()) {
        if (present.has(name)) continue;
        within.add(name);
        listed.delete(name);
      }
    }
    for (const [name, m] of managed) {
      if (owned.get(name) === m) continue;
      within.add(name);
      owned.set(name, m);
    }
    if (owned.size !== managed.size) {
      for (const name of owned.keys()) {
        if (managed.has(name)) continue;
        within.add(name);
        owned.delete(name);
      }
    }
  }

  return {
    narrow(apps, managed) {
      const within = new Set<string>([...unsteadyNames, ...coupled]);
      record(apps, managed, within);
      let gone = 0;
      for (const name of within) if (owned.has(name) && !listed.has(name)) gone += 1;
      return gone >= 2 ? undefined : within;
    },
    all(apps, managed) {
      record(apps, managed, new Set());
    },
    planned(verdicts, found, within) {
      if (within === undefined) {
        coupled = new Set(found);
        unsteadyNames.clear();
      } else {
        for (const name of within) {
          coupled.delete(name);
          unsteadyNames.delete(name);
        }
        for (const name of found) coupled.add(name);
      }
      for (const [name, v] of verdicts) if (unsteady(v)) unsteadyNames.add(name);
    },
    fileOf: (name) => listed.get(name)?.file,
    reset() {
      listed.clear();
      owned.clear();
      coupled.clear();
      unsteadyNames.clear();
    },
  };
}
