import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openAllowlist } from '../../src/auth/allowlist.ts';
import { PreflightError } from '../../src/init/errors.ts';
import { appsSettingsFromInit, isInitComplete } from '../../src/init/prepare.ts';
import { HOST_UNITS } from '../../src/init/units.ts';
import { hashCompose } from '../../src/sim/vm-rules.ts';
import { appCompose } from '../sim/fixtures.ts';
import { snapshotTree } from './helpers.ts';
import { startInitStage } from './stage.ts';

for (const transport of ['in-process', 'private D-Bus'] as const) {
  test(`full init on the simulated host (${transport} systemd), then a re-run: no file written, no unit started, no mutating RPC`, async (t) => {
    const stage = await startInitStage(t, { bus: transport === 'private D-Bus' });
    assert.deepEqual(await appsSettingsFromInit(stage.config.state_dir), { kms_urls: [], kms_public_key: '' });

    const first = await stage.init();
    assert.deepEqual(stage.model.callsOf('StartUnit').map((c) => c.args[0]), HOST_UNITS);
    assert.deepEqual(first.started, HOST_UNITS);
    assert.deepEqual(stage.mutations(), ['CreateVm']);
    assert.ok(stage.statuses.includes('init 6/6: deploying KMS CVM'), stage.statuses.join('\n'));
    assert.deepEqual(
      stage.statuses.filter((s) => /^init \d\/6: /.test(s)).map((s) => s.slice(0, 9)).filter((s, i, all) => all.indexOf(s) === i),
      ['init 1/6:', 'init 2/6:', 'init 3/6:', 'init 4/6:', 'init 5/6:', 'init 6/6:'],
    );
    const kms = stage.sim.state.get(first.kms.vmId);
    assert.deepEqual([kms?.name, kms?.status, kms?.boot_progress], ['dstack-kms', 'running', 'done']);
    assert.equal(first.kms.url, `https://10.0.2.2:${stage.kmsPort}`);
    assert.equal(first.kms.k256Pubkey, stage.sim.envKeys.kmsPublicKeyHex);
    assert.equal(await isInitComplete(stage.config.state_dir), true);
    assert.deepEqual(await appsSettingsFromInit(stage.config.state_dir), {
      kms_urls: [`https://10.0.2.2:${stage.kmsPort}`],
      kms_public_key: stage.sim.envKeys.kmsPublicKeyHex,
    });

    const before = await snapshotTree(stage.root);
    const starts = stage.model.callsOf('StartUnit').length;
    const second = await stage.init();
    assert.deepEqual(second.written, []);
    assert.deepEqual([second.started, second.restarted], [[], []]);
    assert.deepEqual(await snapshotTree(stage.root), before);
    assert.equal(stage.model.callsOf('StartUnit').length, starts);
    assert.equal(stage.model.callsOf('RestartUnit').length, 0);
    assert.deepEqual(stage.mutations(), ['CreateVm']);
    assert.equal(second.kms.vmId, first.kms.vmId);
  });
}

test('the KMS CVM is created as dstackup does: local key provider, kms.toml by heredoc, loopback port mapping', async (t) => {
  const stage = await startInitStage(t);
  const { kms } = await stage.init();
  const info = (await stage.vmm.getInfo(kms.vmId)).info;
  const config = info?.configuration;
  assert.deepEqual(config?.ports.map((p) => [p.protocol, p.host_address, p.host_port, p.vm_port]), [['tcp', '127.0.0.1', stage.kmsPort, 8000]]);
  assert.deepEqual(config?.kms_urls, []);
  const manifest = JSON.parse(config?.compose_file ?? '{}') as Record<string, unknown>;
  assert.equal(manifest['local_key_provider_enabled'], true);
  assert.equal(manifest['kms_enabled'], false);
  const kmsToml = await readFile(join(stage.config.init.config_dir, 'kms.toml'), 'utf8');
  assert.ok(String(manifest['init_script']).includes(`<<'DSTACK_KMS_TOML'\n${kmsToml}DSTACK_KMS_TOML\n`));
});

test("an operator's vmm.toml edit survives re-init; an enforced key is put back with a warning and dstack-vmm is not restarted", async (t) => {
  const stage = await startInitStage(t);
  await stage.init();
  const vmmToml = join(stage.config.init.config_dir, 'vmm.toml');
  const edited = (await readFile(vmmToml, 'utf8')).replace('log_level = "info"', 'log_level = "debug"');
  await writeFile(vmmToml, edited);
  const again = await stage.init();
  assert.deepEqual(again.written, []);
  assert.equal(await readFile(vmmToml, 'utf8'), edited);

  await writeFile(vmmToml, edited.replace(/^kms_url = .*$/m, 'kms_url = "https://example.invalid:1"'));
  const repaired = await stage.init();
  assert.deepEqual(repaired.written, [vmmToml]);
  const text = await readFile(vmmToml, 'utf8');
  assert.match(text, /log_level = "debug"/);
  assert.match(text, new RegExp(`kms_url = "https://127.0.0.1:${stage.kmsPort}"`));
  assert.ok(stage.warnings().some((w) => w.includes('key "kms_url" is managed by dstack-supervisor')), stage.warnings().join('\n'));
  assert.ok(stage.warnings().some((w) => w.includes('vmm.toml changed while dstack-vmm runs')), stage.warnings().join('\n'));
  assert.equal(stage.model.callsOf('RestartUnit').length, 0);
  assert.equal(stage.model.callsOf('StopUnit').length, 0);
});

test('on a simulated host, whose KMS lives in memory, a KMS CVM gone since the last init is re-created', async (t) => {
  const stage = await startInitStage(t);
  const first = await stage.init();
  await stage.vmm.removeVm(first.kms.vmId);
  await stage.sim.state.waitFor((vms) => vms.length === 0);
  const second = await stage.init();
  assert.notEqual(second.kms.vmId, first.kms.vmId);
  assert.deepEqual(stage.mutations(), ['CreateVm', 'RemoveVm', 'CreateVm']);
  assert.equal(stage.sim.state.get(second.kms.vmId)?.boot_progress, 'done');
  assert.ok(stage.logs.some((l) => String(l.fields['msg']) === `simulated host: the KMS CVM ${first.kms.vmId} of the last start is gone with it; deploying a new one`));
  assert.deepEqual((await appsSettingsFromInit(stage.config.state_dir)).kms_urls, [`https://10.0.2.2:${stage.kmsPort}`]);
});

test('without SGX in the sysroot init fails before any change, naming the devices', async (t) => {
  const stage = await startInitStage(t, { sysroot: { sgx: false } });
  const before = await snapshotTree(stage.root);
  const err = await stage.init().then(
    () => assert.fail('init passed without SGX'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof PreflightError);
  assert.equal(err.code, 'INIT_PREFLIGHT');
  assert.match(err.message, /\/dev\/sgx_enclave/);
  assert.match(err.message, /\/dev\/sgx_provision/);
  assert.equal(err.problems.length, 2);
  assert.deepEqual(await snapshotTree(stage.root), before);
  assert.deepEqual(stage.model.calls, []);
  assert.deepEqual(stage.sim.faults.calls(), []);
});

test('a unit that fails to start is reported by name with its journal; later units are not started', async (t) => {
  const stage = await startInitStage(t, {
    bus: true,
    units: {
      'dstack-auth-simple.service': {},
      'gramine-sealing-key-provider.service': { start: 'fail', failureLog: ['docker: Error response from daemon: error gathering device information'] },
      'dstack-vmm.service': {},
    },
  });
  const err = await stage.init().then(
    () => assert.fail('init passed with a failing unit'),
    (e: unknown) => e as { code: string; unit: string; message: string },
  );
  assert.equal(err.code, 'SYSTEMD_UNIT_FAILED');
  assert.equal(err.unit, 'gramine-sealing-key-provider.service');
  assert.match(err.message, /error gathering device information/);
  assert.deepEqual(stage.model.callsOf('StartUnit').map((c) => c.args[0]), ['dstack-auth-simple.service', 'gramine-sealing-key-provider.service']);
  assert.deepEqual(stage.sim.faults.calls(), []);
  assert.equal(await isInitComplete(stage.config.state_dir), false);
});

test('after init, a KMS-mode app given the KMS URL init learned boots once registered; an unregistered one is denied', async (t) => {
  const stage = await startInitStage(t);
  await stage.init();
  const { kms_urls } = await appsSettingsFromInit(stage.config.state_dir);
  const deploy = async (name: string, register: boolean) => {
    const compose = appCompose(name, { kms: true });
    const appId = hashCompose(compose).slice(0, 40);
    if (register) {
      const allowlist = openAllowlist(stage.config.auth.config_path);
      await allowlist.setHashes(appId, [hashCompose(compose)]);
      await allowlist.close();
    }
    const { id } = await stage.vmm.createVm({ name, image: 'dstack-0.5.11', compose_file: compose, app_id: appId, kms_urls });
    const [vm] = await stage.sim.state.waitFor((vms) => vms.some((v) => v.id === id && (v.boot_progress === 'done' || v.status === 'exited')));
    return stage.sim.state.get(id) ?? vm;
  };
  const registered = await deploy('vault', true);
  assert.deepEqual([registered?.status, registered?.boot_progress, registered?.boot_error], ['running', 'done', '']);
  const stranger = await deploy('stranger', false);
  assert.match(stranger?.boot_error ?? '', /app not registered$/);
});
