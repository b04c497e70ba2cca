// planApp as a table: each combination of desired state, our record and the VMM's view of the VM
// maps to exactly one action. Expectations are written out by hand from the rules (README
// "Decisions", docs/apps-dir.md rules 7, 8, 15–18), not computed with the code under test. Issue 13 item
// 1 lived here: a recorded env hash that lagged behind the VM turned every boot into an upgrade.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { inRunningForm, planApp, type Desired, type DesiredSpec } from '../../handlers/plan.ts';
import type { AppRecord } from '../../src/state/record.ts';
import { VmInfoSchema, type VmInfo } from '../../src/vmm/messages.ts';

const sha = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

const MANIFEST = '{"manifest_version":2,"name":"shop","docker_compose_file":"v1"}';
const NEW_MANIFEST = '{"manifest_version":2,"name":"shop","docker_compose_file":"v2"}';
const HASH = sha(MANIFEST);
const NEW_HASH = sha(NEW_MANIFEST);
const APP_ID = HASH.slice(0, 40);
const ENV = sha('API_KEY=abc');
const NEW_ENV = sha('API_KEY=xyz');
const GATEWAY_URL = 'https://10.0.2.2.nip.io:9202';
const PORT = { protocol: 'tcp', host_address: '127.0.0.1', host_port: 8080, vm_port: 8080 };

function specOf(manifest: string, env?: string): DesiredSpec {
  return {
    name: 'shop', file: 'shop.yaml', manifest, composeHash: sha(manifest), ports: [PORT], image: 'dstack-0.5.5',
    vcpu: 2, memory: 2048, disk: 20, warnings: [], kmsUrls: ['https://10.0.2.2:9201'], gateway: false, gatewayWanted: false, gatewayUrls: [],
    ...(env === undefined ? {} : { env: { entries: [], hash: env } }),
  };
}

const app = (manifest = MANIFEST, env?: string): Desired => ({ kind: 'app', spec: specOf(manifest, env) });
const HOLD: Desired = { kind: 'hold' };
const GONE: Desired = { kind: 'gone' };

// A VM as Status reports it; `manifest` is what its configuration holds.
function vmOf(status: string, progress: string, extra: Partial<VmInfo> = {}, manifest = MANIFEST): VmInfo {
  return VmInfoSchema.parse({
    id: 'vm-1', name: 'shop', status, app_id: APP_ID, boot_progress: progress, running: status === 'running',
    configuration: { name: 'shop', image: 'dstack-0.5.5', compose_file: manifest, vcpu: 2, memory: 2048, disk_size: 20, ports: [PORT], kms_urls: ['https://10.0.2.2:9201'] },
    ...extra,
  });
}

const BOOTED = vmOf('running', 'done');
const BOOTING = vmOf('running', 'starting containers');
const BOOT_FAILED = vmOf('running', 'failed', { boot_error: 'app-compose.json: pull failed' });
const EXITED = vmOf('exited', 'done');
const STOPPED = vmOf('stopped', '');
const REMOVING = vmOf('removing', '');
const BOOTED_NEW = vmOf('running', 'done', {}, NEW_MANIFEST);

// A record as the handlers leave it: settled on `applied`, or mid-operation.
function recordOf(extra: Partial<AppRecord> = {}): AppRecord {
  return { name: 'shop', file: 'shop.yaml', appId: APP_ID, vmId: 'vm-1', phase: 'running', appliedHash: HASH, registeredHashes: [HASH], ...extra };
}
const SETTLED = recordOf();
const SETTLED_ENV = recordOf({ envHash: ENV });
const DEPLOYING = recordOf({ phase: 'deploying', appliedHash: undefined, intent: { op: 'deploy', toHash: HASH, startedAt: 1 } });
// Env values given at CreateVm (deploy.ts records them with the VM id).
const DEPLOYING_ENV = recordOf({ phase: 'deploying', appliedHash: undefined, envHash: ENV, intent: { op: 'deploy', toHash: HASH, startedAt: 1 } });
// An upgrade whose StartVm returned: the env it gave is recorded with the launch.
const UPGRADED_ENV = recordOf({ phase: 'updating', envHash: NEW_ENV, intent: { op: 'upgrade', toHash: HASH, startedAt: 1, launched: true } });
// An upgrade cut short after UpdateVm, before StartVm returned.
const UNLAUNCHED = recordOf({ phase: 'updating', registeredHashes: [HASH, NEW_HASH], intent: { op: 'upgrade', toHash: NEW_HASH, startedAt: 1 } });
const TEARING_DOWN = recordOf({ phase: 'removing', intent: { op: 'teardown', toHash: '', startedAt: 1 } });
const HELD_EXTRA = recordOf({ registeredHashes: [HASH, NEW_HASH] });

type Row = [what: string, desired: Desired, record: AppRecord | undefined, vm: VmInfo | undefined, expected: ReturnType<typeof planApp>];

const ROWS: Row[] = [
  // A file to run.
  ['new file, nothing yet', app(), undefined, undefined, { action: 'deploy', appId: APP_ID }],
  ['recorded VM vanished: redeploy with the recorded app id', app(NEW_MANIFEST), SETTLED, undefined, { action: 'deploy', appId: APP_ID }],
  ['VM being removed', app(), SETTLED, REMOVING, { action: 'await-removal' }],
  ['settled and booted', app(), SETTLED, BOOTED, { action: 'noop' }],
  ['new content', app(NEW_MANIFEST), SETTLED, BOOTED, { action: 'upgrade', changes: ['compose'] }],
  ['deploy launched, guest booting', app(), DEPLOYING, BOOTING, { action: 'await-boot' }],
  ['deploy booted', app(), DEPLOYING, BOOTED, { action: 'finalize' }],
  ['deploy failed to boot', app(), DEPLOYING, BOOT_FAILED, { action: 'restart' }],
  ['guest exited', app(), SETTLED, EXITED, { action: 'restart' }],
  // Tier 2: the guest could not register with the gateway, booted anyway and keeps retrying.
  ['gateway registration failed, guest up', app(), SETTLED, vmOf('running', 'done', { boot_error: 'dstack-gateway registration failed, the app has no ingress route: connection refused' }), { action: 'noop' }],
  ['gateway registration failed on a fresh deploy', app(), DEPLOYING, vmOf('running', 'done', { boot_error: 'dstack-gateway registration failed, the app has no ingress route: connection refused' }), { action: 'finalize' }],
  ['VM stopped behind our back', app(), SETTLED, STOPPED, { action: 'restart' }],
  ['upgrade cut short before StartVm returned', app(NEW_MANIFEST), UNLAUNCHED, BOOTED_NEW, { action: 'restart' }],
  ['VM found by name and app id, no record (adoption)', app(), undefined, BOOTED, { action: 'finalize' }],
  // NAME.env beside the file.
  ['env present, deploy launched, guest booting', app(MANIFEST, ENV), DEPLOYING_ENV, BOOTING, { action: 'await-boot' }],
  ['env present, deploy booted', app(MANIFEST, ENV), DEPLOYING_ENV, BOOTED, { action: 'finalize' }],
  ['env present, deploy failed to boot', app(MANIFEST, ENV), DEPLOYING_ENV, BOOT_FAILED, { action: 'restart' }],
  ['env present, settled', app(MANIFEST, ENV), SETTLED_ENV, BOOTED, { action: 'noop' }],
  ['env value changed', app(MANIFEST, NEW_ENV), SETTLED_ENV, BOOTED, { action: 'upgrade', changes: ['env'] }],
  ['env value changed, upgrade launched, guest booting', app(MANIFEST, NEW_ENV), UPGRADED_ENV, BOOTING, { action: 'await-boot' }],
  ['env value changed, upgrade booted', app(MANIFEST, NEW_ENV), UPGRADED_ENV, BOOTED, { action: 'finalize' }],
  ['env file added to a settled app', app(MANIFEST, ENV), SETTLED, BOOTED, { action: 'upgrade', changes: ['env'] }],
  ['env file removed', app(), SETTLED_ENV, BOOTED, { action: 'upgrade', changes: ['env'] }],
  ['env and content changed', app(NEW_MANIFEST, NEW_ENV), SETTLED_ENV, BOOTED, { action: 'upgrade', changes: ['compose', 'env'] }],
  // Tier 2: where a gateway app's guest registers is the VM's own gateway_urls (issue 14).
  ['gateway URLs changed', { kind: 'app', spec: { ...specOf(MANIFEST), gatewayUrls: [GATEWAY_URL] } }, SETTLED, BOOTED, { action: 'upgrade', changes: ['gateway_urls'] }],
  ['gateway URLs as the VM has them', { kind: 'app', spec: { ...specOf(MANIFEST), gatewayUrls: [GATEWAY_URL] } }, SETTLED, vmOf('running', 'done', { configuration: { ...BOOTED.configuration!, gateway_urls: [GATEWAY_URL] } }), { action: 'noop' }],
  // The file is deleted (confirmed).
  ['gone, never ours', GONE, undefined, BOOTED, { action: 'noop' }],
  ['gone, VM running', GONE, SETTLED, BOOTED, { action: 'teardown' }],
  ['gone, VM being removed', GONE, TEARING_DOWN, REMOVING, { action: 'await-removal' }],
  ['gone, VM already gone', GONE, TEARING_DOWN, undefined, { action: 'forget' }],
  // The file is held (invalid, refused, settling).
  ['held, never ours', HOLD, undefined, undefined, { action: 'noop' }],
  ['held, settled and running', HOLD, SETTLED, BOOTED, { action: 'noop' }],
  ['held, a deploy that never ran registered a hash', HOLD, HELD_EXTRA, BOOTED, { action: 'prune', keep: [HASH] }],
  ['held, VM gone: nothing may boot', HOLD, SETTLED, undefined, { action: 'prune', keep: [] }],
  ['held, guest exited', HOLD, SETTLED, EXITED, { action: 'start-held' }],
  ['held, upgrade whose UpdateVm the VMM refused: nothing to restart into', HOLD, { ...UNLAUNCHED, registeredHashes: [HASH] }, BOOTED, { action: 'noop' }],
  ['held, upgrade cut short before StartVm returned', HOLD, { ...UNLAUNCHED, registeredHashes: [NEW_HASH, HASH] }, BOOTED_NEW, { action: 'start-held' }],
  ['held, teardown removing its VM', HOLD, TEARING_DOWN, REMOVING, { action: 'noop' }],
  ['held, file back after a teardown cut short before RemoveVm', HOLD, TEARING_DOWN, BOOTED, { action: 'call-off-teardown' }],
  ['held, file back after a teardown stopped the VM', HOLD, TEARING_DOWN, EXITED, { action: 'call-off-teardown' }],
  // Soak seed 18303: the VM was removed and the teardown cut short before its entry went; a file of
  // that name came back invalid. Nothing is left to keep: the teardown is finished, entry and all.
  ['held, file back after a teardown removed the VM', HOLD, TEARING_DOWN, undefined, { action: 'forget' }],
  ['file missing, teardown cut short after the VM went', { kind: 'hold', fileMissing: true }, TEARING_DOWN, undefined, { action: 'forget' }],
  ['file missing, delete not yet confirmed, teardown cut short', { kind: 'hold', fileMissing: true }, TEARING_DOWN, BOOTED, { action: 'noop' }],
];

for (const [what, desired, record, vm, expected] of ROWS) {
  test(`planApp: ${what} -> ${expected.action}`, () => {
    const plan = planApp(desired, record, vm);
    if (plan.action === 'prune' && expected.action === 'prune') assert.deepEqual([...plan.keep].sort(), [...expected.keep].sort());
    else assert.deepEqual(plan, expected);
  });
}

// inRunningForm (issue 16): the spec's content as a release before issue 16 serialised it is what
// the VMs above run (MANIFEST); today's form is NEW_MANIFEST. Kept only while nothing else differs.
const TWO_FORMS: DesiredSpec = { ...specOf(NEW_MANIFEST), earlierForm: { manifest: MANIFEST, composeHash: HASH } };
const FORM_ROWS: Array<[what: string, spec: DesiredSpec, vm: VmInfo | undefined, expected: string]> = [
  ['the VM runs the earlier form, nothing else differs: kept', TWO_FORMS, BOOTED, HASH],
  ['the VM runs the earlier form and has exited: kept (a restart, no UpdateVm)', TWO_FORMS, EXITED, HASH],
  ['the VM runs the earlier form, a port differs: today\'s', { ...TWO_FORMS, ports: [{ ...PORT, host_port: 8081 }] }, BOOTED, NEW_HASH],
  ['the VM runs the earlier form, an env file was added: today\'s', { ...TWO_FORMS, env: { entries: [], hash: ENV } }, BOOTED, NEW_HASH],
  ['the VM runs other content: today\'s', { ...TWO_FORMS, earlierForm: { manifest: 'other', composeHash: sha('other') } }, BOOTED, NEW_HASH],
  ['no VM: today\'s', TWO_FORMS, undefined, NEW_HASH],
];

for (const [what, spec, vm, expected] of FORM_ROWS) {
  test(`inRunningForm: ${what}`, () => {
    const formed = inRunningForm(spec, SETTLED, vm);
    assert.equal(formed.composeHash, expected);
    assert.equal(sha(formed.manifest), expected, 'the manifest goes with its hash');
  });
}

test('inRunningForm: a VM kept in the earlier form plans as settled', () => {
  assert.deepEqual(planApp({ kind: 'app', spec: inRunningForm(TWO_FORMS, SETTLED, BOOTED) }, SETTLED, BOOTED), { action: 'noop' });
});
