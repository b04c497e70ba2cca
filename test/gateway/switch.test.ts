// The rolling switch of apps to and from the gateway (issue 14): one app at a time, derived from
// what the VMs run. Expected values are written out by hand for each case.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planSwitch, type SwitchApp } from '../../src/gateway/switch.ts';

const on = (settled = true) => ({ gatewayEnabled: true, settled });
const off = (settled = true) => ({ gatewayEnabled: false, settled });
const app = (name: string, wanted: boolean, vm?: SwitchApp['vm']): SwitchApp => ({ name, wanted, vm });

const ROWS: Array<[string, boolean, SwitchApp[], Record<string, boolean>, string | undefined]> = [
  ['enable: the first wanted app by name goes first, the others wait', true, [app('b', true, off()), app('a', true, off()), app('c', false, off())], { a: true, b: false, c: true }, 'a'],
  ['enable: the app restarting keeps its turn', true, [app('a', true, off()), app('b', true, off(false))], { a: false, b: true }, 'b'],
  ['enable: a whose restart is still to come (manifest moved) holds the turn', true, [app('a', true, on(false)), app('b', true, off())], { a: true, b: false }, 'a'],
  ['enable: once a runs on the gateway, b goes', true, [app('a', true, on()), app('b', true, off())], { a: true, b: true }, 'b'],
  ['enable: a new app (no VM) deploys on the gateway at once', true, [app('a', true), app('b', true, off())], { a: true, b: true }, 'b'],
  ['enable: all there, nothing moves', true, [app('a', true, on()), app('b', false, off())], { a: true, b: true }, undefined],
  ['disable: apps go back one by one', false, [app('a', true, on()), app('b', true, on())], { a: false, b: true }, 'a'],
  ['disable: a new app deploys on direct ports', false, [app('a', true), app('b', true, on())], { a: false, b: false }, 'b'],
  ['disable: an app that no longer asks is not the switch\'s to move', false, [app('a', false, on())], { a: false }, undefined],
];

for (const [what, serving, apps, expected, switching] of ROWS) {
  test(`planSwitch: ${what}`, () => {
    const plan = planSwitch(serving, apps);
    assert.deepEqual(Object.fromEntries(plan.serving), expected);
    assert.equal(plan.switching, switching);
  });
}
