// Which apps may follow the gateway now. Switching an app to or from the gateway changes its
// manifest (gateway_enabled is measured), so it is an in-place upgrade with a restart; apps are
// switched one at a time, each running again before the next (issue 14), so a bad switch stops at
// one app. Everything is derived from what the VMs run, so a supervisor killed mid-way picks up
// where it stopped.

// One app as the switch sees it: whether it asks for the gateway, and its VM if it has one.
export type SwitchApp = {
  name: string;
  wanted: boolean;
  // `gatewayEnabled`: what its VM's manifest says; `settled`: running, booted, no boot error, and
  // no operation of the app open (an UpdateVm whose restart is still to come leaves the manifest
  // moved and the guest where it was).
  vm?: { gatewayEnabled: boolean; settled: boolean };
};

// Per app, the `serving` its spec is built with (src/app/spec.ts Tier2): the gateway's state for
// apps already there, new apps and the one being switched; the state its VM has for the others.
// `switching`: the app being moved now, if any.
export function planSwitch(serving: boolean, apps: readonly SwitchApp[]): { serving: Map<string, boolean>; switching?: string } {
  const moving = (a: SwitchApp): boolean => a.wanted && a.vm !== undefined && a.vm.gatewayEnabled !== serving;
  const candidates = apps.filter(moving).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  // One already on its way keeps the turn: a candidate restarting, or an app whose manifest moved
  // but whose operation is still open (cut short by a restart of the supervisor); else the first
  // candidate by name takes it.
  const unsettled = (a: SwitchApp) => a.wanted && a.vm?.settled === false;
  const picked = candidates.find(unsettled);
  const arriving = picked ? undefined : apps.filter((a) => unsettled(a) && !moving(a)).sort((a, b) => (a.name < b.name ? -1 : 1))[0];
  const turn = picked ?? (arriving ? undefined : candidates[0]);
  const result = new Map<string, boolean>();
  for (const app of apps) result.set(app.name, app === turn || !moving(app) ? serving : !serving);
  return { serving: result, switching: (turn ?? arriving)?.name };
}
