import { test } from 'node:test';
import assert from 'node:assert/strict';
import { access, readFile } from 'node:fs/promises';
import { parse as parseToml } from 'smol-toml';
import { readInitJournal } from '../../src/init/journal.ts';
import { getPath } from '../../src/init/merge.ts';
import { configPaths } from '../../src/init/render.ts';
import { AUTH_SIMPLE_UNIT, hostUnitsFor, KEY_PROVIDER_UNIT, VMM_UNIT } from '../../src/init/units.ts';
import { snapshotTree } from './helpers.ts';
import { startInitStage } from './stage.ts';

test('hostUnitsFor: the key provider on TDX only', () => {
  assert.deepEqual(hostUnitsFor('tdx'), [AUTH_SIMPLE_UNIT, KEY_PROVIDER_UNIT, VMM_UNIT]);
  assert.deepEqual(hostUnitsFor('amd-sev-snp'), [AUTH_SIMPLE_UNIT, VMM_UNIT]);
});

test('full init on a simulated SNP host (auto-detected): no key provider started, SNP configs, KMS up; a re-run changes nothing', async (t) => {
  const stage = await startInitStage(t, { sysroot: { snp: 'kvm' } });
  const first = await stage.init();
  assert.deepEqual(stage.model.callsOf('StartUnit').map((c) => c.args[0]), [AUTH_SIMPLE_UNIT, VMM_UNIT]);
  assert.deepEqual(first.started, [AUTH_SIMPLE_UNIT, VMM_UNIT]);
  assert.equal((await stage.systemd.unitState(KEY_PROVIDER_UNIT)).ActiveState, 'inactive');
  assert.deepEqual(stage.mutations(), ['CreateVm']);
  assert.ok(stage.statuses.includes('init 5/6: starting dstack-auth-simple, dstack-vmm'), stage.statuses.join('\n'));
  assert.ok(stage.logs.some((l) => /preflight: platform amd-sev-snp \(detected from the CPU flags/.test(String(l.fields['msg']))));

  const paths = configPaths(stage.config.init, stage.config.auth.config_path);
  const vmm = parseToml(await readFile(paths.vmmToml, 'utf8'));
  assert.equal(getPath(vmm, ['cvm', 'platform']), 'amd-sev-snp');
  const kmsToml = await readFile(paths.kmsToml, 'utf8');
  assert.equal(getPath(parseToml(kmsToml), ['core', 'sev_snp_key_release']), true);
  await assert.rejects(access(paths.keyProviderEnv), { code: 'ENOENT' });

  const kms = stage.sim.state.get(first.kms.vmId);
  assert.deepEqual([kms?.name, kms?.status], ['dstack-kms', 'running']);
  const { info } = await stage.vmm.getInfo(first.kms.vmId);
  const compose = JSON.parse(info!.configuration!.compose_file) as { local_key_provider_enabled: boolean; init_script: string };
  assert.equal(compose.local_key_provider_enabled, false);
  assert.ok(compose.init_script.includes('sev_snp_key_release = true'));
  const journal = await readInitJournal(stage.config.state_dir);
  assert.equal(journal.steps.preflight?.detail['platform'], 'amd-sev-snp');
  assert.equal(journal.steps.units?.detail['units'], `${AUTH_SIMPLE_UNIT} ${VMM_UNIT}`);

  const before = await snapshotTree(stage.root);
  const starts = stage.model.callsOf('StartUnit').length;
  const second = await stage.init();
  assert.deepEqual([second.written, second.started, second.restarted], [[], [], []]);
  assert.equal(second.kms.vmId, first.kms.vmId);
  assert.equal(stage.model.callsOf('StartUnit').length, starts);
  assert.deepEqual(stage.mutations(), ['CreateVm']);
  assert.deepEqual(await snapshotTree(stage.root), before);
});

test('[init] platform = "amd-sev-snp" on a TDX host: the preflight refuses before anything is written', async (t) => {
  const stage = await startInitStage(t, { init: { platform: 'amd-sev-snp' } });
  const before = await snapshotTree(stage.root);
  await assert.rejects(stage.init(), (err: unknown) => {
    assert.equal((err as { code?: string }).code, 'INIT_PREFLIGHT');
    assert.match(String(err), /\/dev\/sev/);
    return true;
  });
  assert.deepEqual(stage.model.callsOf('StartUnit'), []);
  assert.deepEqual(stage.mutations(), []);
  // Only the sim's own files may move; init wrote no config.
  assert.equal([...(await snapshotTree(stage.root)).keys()].filter((p) => !before.has(p) && p.includes('/etc/')).length, 0);
});
