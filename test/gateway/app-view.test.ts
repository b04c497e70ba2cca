// The gateway's side of an app whose guest could not register, as its status shows it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeGatewayView } from '../../src/gateway/app-view.ts';
import type { HostInfo } from '../../src/gateway/admin-messages.ts';

const APP = 'ab'.repeat(20);
const host = (app_id: string, instance_id: string, latest_handshake = 1_700_000_000): HostInfo => ({ instance_id, ip: '10.8.0.2', app_id, base_domain: 'apps.example.com', latest_handshake, num_connections: 0 });
const serving = (hosts: HostInfo[]) => ({ phase: 'serving' as const, reason: 'serving *.apps.example.com on port 443', hosts });

const CASES: Array<[string, Parameters<typeof describeGatewayView>[0], string]> = [
  ['no Status read (not serving)', { phase: 'certificate', reason: 'waiting for the certificate of *.apps.example.com' }, "the gateway's view: not known (the gateway is certificate: waiting for the certificate of *.apps.example.com)"],
  ['the app absent', serving([host('cd'.repeat(20), 'i1')]), `the gateway's view (admin Status): no instance of app ${APP} is registered (it lists 1 instance(s) of other apps); check the gateway's log and that the app's guest reaches it`],
  ['another instance of the app', serving([host(`0x${APP.toUpperCase()}`, 'old-instance')]), `the gateway's view (admin Status): app ${APP} is registered with instance(s) old-instance, not with this VM's instance i9`],
  ['this instance, since', serving([host(APP, 'i9')]), "the gateway's view (admin Status): this VM's instance i9 is registered at 10.8.0.2 (the guest's checker registered it after boot; the boot error stays until the VM restarts)"],
  ['this instance, no handshake', serving([host(APP, 'I9', 0)]), "the gateway's view (admin Status): this VM's instance I9 is registered at 10.8.0.2, no WireGuard handshake yet (the guest's checker registered it after boot; the boot error stays until the VM restarts)"],
];

for (const [what, view, text] of CASES) {
  test(`describeGatewayView: ${what}`, () => {
    assert.equal(describeGatewayView(view, { app_id: APP, instance_id: 'i9' }), text);
  });
}
