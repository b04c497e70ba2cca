// The call-log invariants on hand-made logs: what counts against an app, what justifies it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CallRecord } from '../../src/sim/faults.ts';
import { categoryOf } from './oracle.ts';
import { checkCalls, retriedEntries, retriesDue, note, openWindow, quietOffences } from './calls.ts';

const call = (method: string, name: string | undefined, outcome: CallRecord['outcome'] = 'ok', vmId = `vm-${name}`): CallRecord => ({ method, name, vmId, at: 0, outcome });
const upgrade = (name: string) => [call('UpdateVm', name), call('ShutdownVm', name), call('StartVm', name)];

test('an app upgraded on every pass with nothing changed is a restart loop (issue 13 item 1)', () => {
  const window = openWindow(0, new Map([['web', 'vm-web']]));
  note(window, 'web', 'env');
  const log = [...upgrade('web'), call('Status', undefined), ...upgrade('web'), ...upgrade('web')];
  const violations = checkCalls(window, log, new Map([['web', 'vm-web']]));
  assert.deepEqual(violations.map(categoryOf), ['restart-loop', 'restart-loop']);
  assert.match(violations[0] ?? '', /web: 3 StartVm since the last check, more than the 1 its ops justify \(env 1\)/);
});

test('each op, crash, restart and injected fault justifies one more operation', () => {
  const window = openWindow(0, new Map([['web', 'vm-web'], ['db', 'vm-db']]));
  note(window, 'web', 'file');
  note(window, 'web', 'crash');
  window.restarts += 1;
  const log = [call('StartVm', 'web', 'fault'), call('Status', undefined, 'fault'), ...upgrade('web'), ...upgrade('web'), call('StartVm', 'web'), call('StartVm', 'web'), call('StartVm', 'db'), call('StartVm', 'db')];
  // web: file 1 + crash 1 + restarts 1 + faults 1 + unattributed 1 = 5 StartVm; db: restarts 1 + unattributed 1.
  assert.deepEqual(checkCalls(window, log, new Map([['web', 'vm-web'], ['db', 'vm-db']])), []);
  assert.deepEqual(checkCalls(window, [...log, call('StartVm', 'db')], new Map([['web', 'vm-web'], ['db', 'vm-db']])).map(categoryOf), ['restart-loop']);
});

test('a new VM for an app that had one needs a delete or rename of its file in between', () => {
  const before = new Map([['web', 'vm-1']]);
  const replaced = checkCalls(openWindow(0, before), [call('CreateVm', 'web', 'ok', 'vm-2')], new Map([['web', 'vm-2']]));
  // Unjustified as a change too: nothing touched the app.
  assert.deepEqual(replaced.map(categoryOf), ['restart-loop', 'vm-replaced', 'vm-replaced']);
  const window = openWindow(0, before);
  note(window, 'web', 'end');
  note(window, 'web', 'file');
  assert.deepEqual(checkCalls(window, [call('RemoveVm', 'web', 'ok', 'vm-1'), call('CreateVm', 'web', 'ok', 'vm-2')], new Map([['web', 'vm-2']])), []);
  // A refused CreateVm changed nothing; the one that worked was the file's first deploy.
  const first = openWindow(0, new Map());
  note(first, 'db', 'file');
  assert.deepEqual(checkCalls(first, [call('CreateVm', 'db', 'rejected'), call('CreateVm', 'db')], new Map([['db', 'vm-db']])), []);
  // Its file deleted while its unreadable record held it: moving the record aside lets it go.
  const held = openWindow(0, before);
  assert.equal(checkCalls(held, [call('RemoveVm', 'web', 'ok', 'vm-1')], new Map()).length, 1);
  note(held, 'web', 'record');
  assert.deepEqual(checkCalls(held, [call('RemoveVm', 'web', 'ok', 'vm-1')], new Map()), []);
  // Of two files for one name, one renamed away: the other becomes the app and upgrades once.
  const twin = openWindow(0, before);
  note(twin, 'web', 'end');
  assert.deepEqual(checkCalls(twin, upgrade('web'), before), []);
  assert.equal(checkCalls(twin, [...upgrade('web'), ...upgrade('web')], before).length, 2);
  // Waiting for a port another app held: freed by an op on that app, it deploys or upgrades once.
  const waited = openWindow(0, new Map([['shop', 'vm-shop']]), new Set(['shop']));
  assert.deepEqual(checkCalls(waited, upgrade('shop'), new Map([['shop', 'vm-shop']])), []);
  assert.equal(checkCalls(waited, [...upgrade('shop'), ...upgrade('shop')], new Map([['shop', 'vm-shop']])).length, 2);
});

test('after convergence any VMM change is a loop, except refused retries of an app waiting for a port and calls an injected failure failed', () => {
  const log = [call('Status', undefined), call('CreateVm', 'shop', 'rejected'), call('UpdateVm', 'blog', 'fault'), call('StartVm', 'db', 'fault'), call('StartVm', 'web'), call('StartVm', 'web')];
  assert.deepEqual(quietOffences(log, new Set(['shop', 'blog'])), ['loop: web StartVm (ok) ×2 after convergence, with no op to cause it']);
  assert.deepEqual(quietOffences(log, new Set()).map((o) => o.split(' ×')[0]), ['loop: shop CreateVm (rejected)', 'loop: web StartVm (ok)']);
  assert.deepEqual(quietOffences(log, new Set(['shop']), (name) => name === 'web'), [], 'web retries a failed operation');
  // Seed 23202: a waiting app's held VM started again after convergence.
  assert.deepEqual(quietOffences([call('StartVm', 'charlie', 'fault-after-apply')], new Set(['charlie'])), []);
  assert.deepEqual(quietOffences([call('StartVm', 'charlie', 'fault-after-apply')], new Set()), ['loop: charlie StartVm (fault-after-apply) ×1 after convergence, with no op to cause it']);
  // Seed 23202: a StartVm read while in flight, which an injected failure then failed.
  assert.deepEqual(quietOffences([call('StartVm', 'charlie', 'pending')], new Set()), [], 'judged once it is done');
});

test('a retry is due for the apps an injected failure hit, and for all after a failed Status or a VMM restart', () => {
  const window = openWindow(0, new Map());
  const due = retriesDue(window, [call('StopVm', 'web', 'fault'), call('StartVm', 'db')]);
  assert.deepEqual([due('web'), due('db')], [true, false]);
  assert.equal(retriesDue(window, [call('Status', undefined, 'fault')])('db'), true);
  assert.equal(retriesDue({ ...window, vmmRestarts: 1 }, [])('db'), true);
});

test("an allowlist write after convergence is a retry's only when every entry it changed is of an app with a retry due", () => {
  const nameOf = new Map([['id-bravo', 'bravo'], ['id-web', 'web']]);
  const due = (name: string) => name === 'bravo';
  assert.equal(retriedEntries(['id-bravo'], nameOf, due), true, "seed 23202: bravo's prune, retried");
  assert.equal(retriedEntries(['id-bravo', 'id-web'], nameOf, due), false);
  assert.equal(retriedEntries(['id-unknown'], nameOf, due), false, 'an entry of no VM is nobody\'s retry');
  assert.equal(retriedEntries([], nameOf, due), false, 'a rewrite that changed no entry is no retry');
});
