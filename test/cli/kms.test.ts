// `dstack-supervisor kms`, as a real process: the two steps of a KMS replica (issue 17).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { readCvmMeasurement } from '../../src/vmm/guest-info.ts';
import { startInitStage } from '../init/stage.ts';

const BIN = join(import.meta.dirname, '../../bin/dstack-supervisor.mjs');

function cli(args: string[], config: string) {
  return execa(process.execPath, [BIN, 'kms', ...args, '--config', config], { reject: false, env: { DSTACK_SUPERVISOR_CONFIG: '' } });
}

test('kms measurement prints the KMS CVM\'s measurement read through dstack-vmm; kms allow lists one in auth-config.json once', async (t) => {
  const stage = await startInitStage(t);
  const { kms } = await stage.init();
  const config = join(stage.root, 'supervisor.toml');
  const q = JSON.stringify;
  await writeFile(config, [`state_dir = ${q(stage.config.state_dir)}`, '[vmm]', `url = ${q(stage.sim.vmmUrl)}`, 'token_file = ""', '[auth]', `config_path = ${q(stage.config.auth.config_path)}`, ''].join('\n'));

  const measured = await cli(['measurement', '--json'], config);
  assert.equal(measured.exitCode, 0, measured.stderr);
  const expected = await readCvmMeasurement(stage.sim.vmmUrl, undefined, kms.vmId);
  assert.deepEqual(JSON.parse(measured.stdout), { vm_id: kms.vmId, mr_aggregated: expected.mrAggregated, os_image_hash: expected.osImageHash, device_id: expected.deviceId });
  const text = await cli(['measurement'], config);
  assert.match(text.stdout, new RegExp(`^On the other host of the pair: dstack-supervisor kms allow ${expected.mrAggregated} --os-image ${expected.osImageHash}$`, 'm'));

  const peer = 'AB'.repeat(32);
  const before = await readFile(stage.config.auth.config_path, 'utf8');
  for (let i = 0; i < 2; i++) {
    const allowed = await cli(['allow', `0x${peer}`, '--os-image', 'cd'.repeat(32)], config);
    assert.equal(allowed.exitCode, 0, allowed.stderr);
  }
  const after = JSON.parse(await readFile(stage.config.auth.config_path, 'utf8')) as { kms: { mrAggregated: string[]; allowAnyDevice: boolean }; osImages: string[]; apps: unknown };
  assert.deepEqual(after.kms.mrAggregated, [peer.toLowerCase()]);
  assert.deepEqual(after.osImages.slice(-1), ['cd'.repeat(32)]);
  const untouched = JSON.parse(before) as typeof after;
  assert.deepEqual([after.apps, after.kms.allowAnyDevice], [untouched.apps, untouched.kms.allowAnyDevice]);

  const again = await cli(['allow', peer], config);
  assert.match(again.stdout, /: already listed: kms\.mrAggregated /);

  const bad = await cli(['allow', 'not-hex'], config);
  assert.equal(bad.exitCode, 1);
  assert.match(bad.stderr, /^dstack-supervisor kms: .*KMS mr_aggregated/);
});

test('kms allow before the first init creates auth-config.json, and init keeps the KMS it lists', async (t) => {
  const stage = await startInitStage(t);
  const config = join(stage.root, 'supervisor.toml');
  await writeFile(config, ['[auth]', `config_path = ${JSON.stringify(stage.config.auth.config_path)}`, ''].join('\n'));
  const allowed = await cli(['allow', 'ef'.repeat(32), '--os-image', '01'.repeat(32)], config);
  assert.equal(allowed.exitCode, 0, allowed.stderr);
  assert.match(allowed.stdout, /: added: kms\.mrAggregated /);
  await stage.init();
  const rendered = JSON.parse(await readFile(stage.config.auth.config_path, 'utf8')) as { kms: { mrAggregated: string[] }; osImages: string[] };
  assert.deepEqual(rendered.kms.mrAggregated, ['ef'.repeat(32)]);
  assert.equal(rendered.osImages[0], '01'.repeat(32));
  assert.equal(rendered.osImages.length, 2, 'the image pin is added beside it');
});
