import { test } from 'node:test';
import assert from 'node:assert/strict';
import { access, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { parse as parseToml } from 'smol-toml';
import { kmsAppCompose, isKmsCompose } from '../../src/init/kms-compose.ts';
import { getPath } from '../../src/init/merge.ts';
import type { Platform } from '../../src/init/platform.ts';
import { configPaths, renderHostConfig, type RenderInputs } from '../../src/init/render.ts';
import { initIn, tempDir } from './helpers.ts';

async function inputsFor(t: TestContext, platform: Platform): Promise<RenderInputs> {
  const init = initIn(await tempDir(t));
  return { init, vmmUrl: 'unix:/var/run/dstack/vmm.sock', authConfigPath: join(init.config_dir, 'auth-config.json'), osImagePin: 'b'.repeat(64), platform, isPortFree: async () => true };
}

const tomlAt = async (path: string) => parseToml(await readFile(path, 'utf8'));

test('SNP: kms.toml opens the key-release gate, vmm.toml says amd-sev-snp/vhd/mrconfigid, no key provider env; a re-run writes nothing', async (t) => {
  const inputs = await inputsFor(t, 'amd-sev-snp');
  const paths = configPaths(inputs.init, inputs.authConfigPath);
  const first = await renderHostConfig(inputs);
  const kms = await tomlAt(paths.kmsToml);
  assert.equal(getPath(kms, ['core', 'sev_snp_key_release']), true);
  assert.equal(getPath(kms, ['core', 'amd_kds_base_url']), '');
  const vmm = await tomlAt(paths.vmmToml);
  assert.deepEqual(
    ['platform', 'use_mrconfigid', 'host_share_mode'].map((k) => getPath(vmm, ['cvm', k])),
    ['amd-sev-snp', true, 'vhd'],
  );
  assert.equal(getPath(vmm, ['key_provider', 'enabled']), false);
  assert.ok(!first.written.includes(paths.keyProviderEnv));
  await assert.rejects(access(paths.keyProviderEnv), { code: 'ENOENT' });
  assert.deepEqual((await renderHostConfig(inputs)).written, []);
});

test('SNP: an operator KDS mirror is kept, a closed key-release gate is re-opened with a warning', async (t) => {
  const inputs = await inputsFor(t, 'amd-sev-snp');
  const paths = configPaths(inputs.init, inputs.authConfigPath);
  await renderHostConfig(inputs);
  const text = (await readFile(paths.kmsToml, 'utf8'))
    .replace('sev_snp_key_release = true', 'sev_snp_key_release = false')
    .replace('amd_kds_base_url = ""', 'amd_kds_base_url = "https://kds.example/vcek/v1"');
  await writeFile(paths.kmsToml, text);
  const again = await renderHostConfig(inputs);
  assert.equal(again.warnings.length, 1);
  assert.match(again.warnings[0]!, /core\.sev_snp_key_release/);
  const kms = await tomlAt(paths.kmsToml);
  assert.equal(getPath(kms, ['core', 'sev_snp_key_release']), true);
  assert.equal(getPath(kms, ['core', 'amd_kds_base_url']), 'https://kds.example/vcek/v1');
});

test('TDX renders as before: no SNP keys in kms.toml, platform tdx, 9p, the key provider on', async (t) => {
  const inputs = await inputsFor(t, 'tdx');
  const paths = configPaths(inputs.init, inputs.authConfigPath);
  const first = await renderHostConfig(inputs);
  const kms = await tomlAt(paths.kmsToml);
  assert.equal(getPath(kms, ['core', 'sev_snp_key_release']), undefined);
  assert.equal(getPath(kms, ['core', 'amd_kds_base_url']), undefined);
  const vmm = await tomlAt(paths.vmmToml);
  assert.deepEqual(['platform', 'use_mrconfigid', 'host_share_mode'].map((k) => getPath(vmm, ['cvm', k])), ['tdx', false, '9p']);
  assert.equal(getPath(vmm, ['key_provider', 'enabled']), true);
  assert.ok(first.written.includes(paths.keyProviderEnv));
});

test('the KMS compose uses the local key provider on TDX only, and is recognised as the KMS on both', () => {
  for (const [platform, local] of [['tdx', true], ['amd-sev-snp', false]] as const) {
    const compose = kmsAppCompose('[core]\nsev_snp_key_release = true\n', '/etc/dstack/kms.toml', platform);
    assert.equal((JSON.parse(compose) as { local_key_provider_enabled: boolean }).local_key_provider_enabled, local);
    assert.equal(isKmsCompose(compose), true, platform);
  }
  // An app that merely shares the name is still not the KMS.
  assert.equal(isKmsCompose(JSON.stringify({ name: 'dstack-kms', init_script: 'echo hi', local_key_provider_enabled: false })), false);
});
