// The gateway's side of an app whose guest reported "registration failed": what the gateway's
// admin `Status` lists for that app (docs/dstack.md "Gateway", Readiness: `hosts[]` has each registered
// instance's app id, instance id and tunnel address). Shown beside the guest's boot error in the
// app's status, so an operator sees both ends: the guest could not register, and the gateway has
// (or has not, or has since) got it.
import type { HostInfo } from './admin-messages.ts';
import type { GatewayPhase } from './reconcile.ts';

// What Tier 2's last pass knew: the gateway's phase and, while it serves, its registered hosts
// (undefined when Status could not be read).
export type GatewayHostsView = { phase: GatewayPhase; reason: string; hosts?: HostInfo[] };

// The app's VM as the VMM lists it.
export type RegisteringVm = { app_id: string; instance_id?: string | undefined };

const normal = (id: string): string => id.toLowerCase().replace(/^0x/, '');

// One clause for the app's status message, starting "the gateway's view".
export function describeGatewayView(view: GatewayHostsView, vm: RegisteringVm): string {
  if (view.hosts === undefined) return `the gateway's view: not known (the gateway is ${view.phase}: ${view.reason})`;
  const appId = normal(vm.app_id);
  const mine = view.hosts.filter((h) => normal(h.app_id) === appId);
  if (mine.length === 0) {
    return `the gateway's view (admin Status): no instance of app ${appId} is registered (it lists ${view.hosts.length - mine.length} instance(s) of other apps); check the gateway's log and that the app's guest reaches it`;
  }
  const self = vm.instance_id ? mine.find((h) => normal(h.instance_id) === normal(vm.instance_id ?? '')) : undefined;
  if (self !== undefined) {
    const handshake = self.latest_handshake === 0 ? ', no WireGuard handshake yet' : '';
    return `the gateway's view (admin Status): this VM's instance ${self.instance_id} is registered at ${self.ip}${handshake} (the guest's checker registered it after boot; the boot error stays until the VM restarts)`;
  }
  return `the gateway's view (admin Status): app ${appId} is registered with instance(s) ${mine.map((h) => h.instance_id).join(', ')}, not with this VM's instance ${vm.instance_id || '(unknown)'}`;
}
