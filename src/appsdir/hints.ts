// The watcher's hints between two scans (issue 18): the names of the apps.d entries it saw an
// event for, which the next event pass looks at again; every other file is taken as it was.
import { RECHECK_ALL, type Recheck } from './scan.ts';

export type ChangeHints = {
  // Entries events came for; undefined: an event that named none, so any entry may have changed.
  add(names: readonly string[] | undefined): void;
  // What the next scan looks at again (everything when `full`), and start collecting anew.
  take(full: boolean): Recheck;
};

// An empty set of hints.
export function createChangeHints(): ChangeHints {
  let names = new Set<string>();
  let unnamed = false;
  return {
    add(list) {
      if (list === undefined) unnamed = true;
      else for (const name of list) names.add(name);
    },
    take(full) {
      const recheck: Recheck = full || unnamed ? RECHECK_ALL : { all: false, names };
      names = new Set();
      unnamed = false;
      return recheck;
    },
  };
}
