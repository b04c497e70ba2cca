import { test } from 'node:test';
import assert from 'node:assert/strict';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openAllowlist } from '../../src/auth/allowlist.ts';
import { destroyHost } from '../../src/init/destroy.ts';
import { isInitComplete } from '../../src/init/prepare.ts';
import { HOST_UNITS } from '../../src/init/units.ts';
import { createLogger } from '../../src/log/logger.ts';
import { hashCompose } from '../../src/sim/vm-rules.ts';
import { openStateStore } from '../../src/state/store.ts';
import { writeAppStatus } from '../../src/status/store.ts';
import { createVmmClient } from '../../src/vmm/client.ts';
import { appCompose } from '../sim/fixtures.ts';
import { startInitStage, type Stage } from './stage.ts';
import { defer } from '../helpers/cleanup.ts';
import { loadOrCreateGatewaySecrets } from '../../src/gateway/secrets.ts';

const exists = (path: string): Promise<boolean> => access(path).then(() => true, () => false);

// What the supervisor leaves behind for one app: its CVM, allowlist entry, state record and status.
async function deployApp(stage: Stage, name: string): Promise<{ vmId: string; appId: string }> {
  const compose = appCompose(name);
  const appId = hashCompose(compose).slice(0, 40);
  const { id } = await stage.vmm.createVm({ name, image: 'dstack-0.5.11', compose_file: compose });
  const allowlist = openAllowlist(stage.config.auth.config_path);
  await allowlist.setHashes(appId, [hashCompose(compose)]);
  await allowlist.close();
  const store = await openStateStore(stage.config.state_dir);
  await store.save({ name, file: join(stage.config.apps_dir, `${name}.yaml`), appId, vmId: id, phase: 'running', appliedHash: hashCompose(compose), registeredHashes: [hashCompose(compose)] });
  await writeAppStatus(stage.config.state_dir, {
    app: name,
    file: join(stage.config.apps_dir, `${name}.yaml`),
    phase: 'running',
    app_id: appId,
    vm_id: id,
    compose_hash: hashCompose(compose),
    urls: [],
    last_error: null,
    warnings: [],
    updated_at: new Date().toISOString(),
  });
  return { vmId: id, appId };
}

function destroy(stage: Stage, purge: boolean) {
  return destroyHost(
    { config: stage.config, systemd: stage.systemd, vmm: stage.vmm, log: createLogger({ level: 'error' }), timing: { pollMs: 10, removeTimeoutMs: 2_000 } },
    { purge },
  );
}

test('destroy removes the app CVMs it created and their allowlist entries, stops the KMS and the units, and a later init reuses the same KMS', async (t) => {
  const stage = await startInitStage(t);
  const first = await stage.init();
  const app = await deployApp(stage, 'shop');
  const { id: foreign } = await stage.vmm.createVm({ name: 'by-hand', image: 'dstack-0.5.11', compose_file: appCompose('by-hand') });
  const etc = stage.config.init.config_dir;

  const result = await destroy(stage, false);
  assert.deepEqual(result.removedApps, ['shop']);
  assert.deepEqual(result.kms, { vmId: first.kms.vmId, action: 'stopped' });
  assert.deepEqual(result.stoppedUnits, [...HOST_UNITS].reverse());
  assert.equal(stage.sim.state.get(app.vmId), undefined);
  assert.equal(stage.sim.state.get(foreign)?.status, 'running');
  assert.equal(stage.sim.state.get(first.kms.vmId)?.status, 'stopped');
  const auth = JSON.parse(await readFile(stage.config.auth.config_path, 'utf8')) as { apps: Record<string, unknown> };
  assert.deepEqual(Object.keys(auth.apps), []);
  assert.deepEqual(await (await openStateStore(stage.config.state_dir)).loadAll(), { records: [], unreadable: [] });
  assert.equal(await exists(join(stage.config.state_dir, 'status', 'shop.json')), false);
  for (const file of ['vmm.toml', 'kms.toml', 'auth-simple.env', 'key-provider.env']) assert.equal(await exists(join(etc, file)), false, file);
  assert.equal(await isInitComplete(stage.config.state_dir), false);
  assert.equal(await exists(join(etc, 'tls', 'ca.crt')), true);
  for (const unit of HOST_UNITS) assert.equal((await stage.systemd.unitState(unit)).ActiveState, 'inactive');

  const mutationsBefore = stage.mutations().length;
  const again = await stage.init();
  assert.equal(again.kms.vmId, first.kms.vmId);
  assert.deepEqual(stage.mutations().slice(mutationsBefore), ['StartVm']);
  assert.equal(again.kms.k256Pubkey, first.kms.k256Pubkey);
  assert.deepEqual(again.started, HOST_UNITS);
});

test('destroy --purge also removes the KMS CVM, the TLS files and auth-config.json; the next init makes a new KMS', async (t) => {
  const stage = await startInitStage(t);
  const first = await stage.init();
  const result = await destroy(stage, true);
  assert.deepEqual(result.kms, { vmId: first.kms.vmId, action: 'removed' });
  assert.equal(stage.sim.state.get(first.kms.vmId), undefined);
  assert.equal(await exists(join(stage.config.init.config_dir, 'tls')), false);
  assert.equal(await exists(stage.config.auth.config_path), false);

  const again = await stage.init();
  assert.notEqual(again.kms.vmId, first.kms.vmId);
  assert.deepEqual(stage.mutations(), ['CreateVm', 'RemoveVm', 'CreateVm']);
});

test('destroy is repeatable: a second run finds nothing to remove and keeps the stopped KMS', async (t) => {
  const stage = await startInitStage(t);
  await stage.init();
  await destroy(stage, false);
  const second = await destroy(stage, false);
  assert.deepEqual(second, { removedApps: [], kms: { vmId: second.kms?.vmId ?? '', action: 'kept' }, gateway: undefined, stoppedUnits: [], removedFiles: [] });
});

test('with dstack-vmm unreachable, destroy refuses to forget app CVMs it cannot remove', async (t) => {
  const stage = await startInitStage(t);
  await stage.init();
  await deployApp(stage, 'shop');
  const down = createVmmClient({ url: `unix:${join(stage.root, 'no-vmm.sock')}` });
  defer(t, () => down.close());
  const err = await destroyHost({ config: stage.config, systemd: stage.systemd, vmm: down, log: createLogger({ level: 'error' }) }, { purge: false }).then(
    () => assert.fail('destroy passed without a VMM'),
    (e: unknown) => e as { code: string; message: string },
  );
  assert.equal(err.code, 'DESTROY_VMM_DOWN');
  assert.match(err.message, /1 app CVM\(s\) cannot be removed/);
  assert.equal((await (await openStateStore(stage.config.state_dir)).loadAll()).records.length, 1);
  assert.equal(await exists(join(stage.config.init.config_dir, 'vmm.toml')), true);
});

// Issue 14: the gateway CVM is the supervisor's too (found by name and the app id its kept secrets
// name): destroy stops it, keeping its disk, and --purge removes it and its secrets.
test('destroy stops the gateway CVM and clears gatewayAppId; --purge removes it and its secrets', async (t) => {
  const stage = await startInitStage(t);
  await stage.init();
  const secrets = await loadOrCreateGatewaySecrets(stage.config.state_dir);
  const compose = appCompose('dstack-gateway');
  const { id } = await stage.vmm.createVm({ name: 'dstack-gateway', image: 'dstack-0.5.11', compose_file: compose, app_id: secrets.appId });
  const allowlist = openAllowlist(stage.config.auth.config_path);
  await allowlist.setHashes(secrets.appId, [hashCompose(compose)]);
  await allowlist.setGatewayAppId(secrets.appId);
  await allowlist.close();

  const first = await destroy(stage, false);
  assert.deepEqual(first.gateway, { vmId: id, action: 'stopped' });
  const vm = (await stage.vmm.status({ ids: [id] })).vms[0];
  assert.ok(vm?.status === 'stopped' || vm?.status === 'stopping', `stopped, not removed (${vm?.status})`);
  const auth = JSON.parse(await readFile(stage.config.auth.config_path, 'utf8'));
  assert.equal(auth.gatewayAppId, '');
  assert.equal(auth.apps[secrets.appId], undefined);

  const purged = await destroy(stage, true);
  assert.deepEqual(purged.gateway, { vmId: id, action: 'removed' });
  assert.equal((await stage.vmm.status({ ids: [id] })).vms.length, 0);
  assert.equal(await exists(join(stage.config.state_dir, 'gateway', 'secrets.json')), false);
});
