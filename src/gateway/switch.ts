// Which apps may follow the gateway now. Switching an app to or from the gateway changes its
// manifest (gateway_enabled is measured), so it is an in-place upgrade with a restart; apps are
// switched one at a time, each running again before the next (issue 14), so a bad switch stops at
// one app. Everything is derived from what the VMs run, so a supervisor killed mid-way picks up
// where it stopped.

// One app as the switch sees it: whether it asks for the gateway, and its VM if it has one.
export type SwitchApp = {
  name: string;
  wanted: boolean;
  // `gatewayEnabled`: what its VM's manifest says; `settled`: running, booted, no boot error.
  vm?: { gatewayEnabled: boolean; settled: boolean };
};

// Per app, the `serving` its spec is built with (src/app/spec.ts Tier2): the gateway's state for
// apps already there, new apps and the one being switched; the state its VM has for the others.
// `switching`: the app being moved now, if any.
export function planSwitch(serving: boolean, apps: readonly SwitchApp[]): { serving: Map<string, boolean>; switching?: string } {
  const moving = (a: SwitchApp): boolean => a.wanted && a.vm !== undefined && a.vm.gatewayEnabled !== serving;
  const candidates = apps.filter(moving).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  // One already on its way (restarting) keeps the turn; else the first by name takes it.
  const picked = candidates.find((a) => a.vm?.settled === false) ?? candidates[0];
  const result = new Map<string, boolean>();
  for (const app of apps) result.set(app.name, app === picked || !moving(app) ? serving : !serving);
  return { serving: result, switching: picked?.name };
}

// Whether any app's VM still uses the gateway: it is stopped only once none does.
export function gatewayInUse(apps: readonly SwitchApp[]): string[] {
  return apps.filter((a) => a.vm?.gatewayEnabled === true).map((a) => a.name);
}
