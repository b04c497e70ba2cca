import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KmsError } from '../../src/init/kms.ts';
import { startInitStage } from './stage.ts';

async function kmsFailure(promise: Promise<unknown>): Promise<KmsError> {
  return promise.then(
    () => assert.fail('init passed'),
    (err: unknown) => {
      assert.ok(err instanceof KmsError, `not a KmsError: ${String(err)}`);
      return err;
    },
  );
}

test('a KMS that boots but never answers over HTTPS times out with its state and log; the next init retries the same CVM', async (t) => {
  const stage = await startInitStage(t);
  stage.sim.kms.setFault('stall');
  const err = await kmsFailure(stage.init({ timing: { kmsTimeoutMs: 300, vmmTimeoutMs: 2_000, pollMs: 10 } }));
  assert.equal(err.code, 'INIT_KMS_TIMEOUT');
  assert.match(err.message, /did not answer over HTTPS at https:\/\/127\.0\.0\.1:\d+ within 300 ms/);
  assert.match(err.message, /status running, boot_progress "done"; boot_error: \(none reported\)/);
  assert.match(err.message, new RegExp(`GET /logs\\?id=${err.vmId}`));
  assert.ok(err.logLines.some((line) => line.endsWith('boot.progress: done')), err.logLines.join('\n'));
  assert.ok(stage.statuses.includes('init 6/6: waiting for the KMS to bootstrap its keys'));

  stage.sim.kms.setFault('none');
  const retry = await stage.init();
  assert.equal(retry.kms.vmId, err.vmId);
  assert.deepEqual(stage.mutations(), ['CreateVm']);
});

test('a KMS CVM that dies while booting fails with its log; the next init starts it again', async (t) => {
  const stage = await startInitStage(t, { sim: { bootDelayMs: 400 } });
  const crashed = stage.sim.state
    .waitFor((vms) => vms.some((vm) => vm.name === 'dstack-kms' && vm.boot_progress === 'init-script'))
    .then((vms) => {
      const vm = vms.find((v) => v.name === 'dstack-kms');
      if (vm !== undefined) stage.sim.faults.crashVm(vm.id);
    });
  const err = await kmsFailure(stage.init());
  await crashed;
  assert.equal(err.code, 'INIT_KMS_BOOT');
  assert.match(err.message, /exited during boot/);
  assert.ok(err.logLines.some((line) => line.endsWith('vmm.process.exited: killed')), err.logLines.join('\n'));

  const retry = await stage.init();
  assert.equal(retry.kms.vmId, err.vmId);
  assert.deepEqual(stage.mutations(), ['CreateVm', 'StartVm']);
});

test('an adopted KMS CVM that publishes another port than kms_urls name is refused with the fix', async (t) => {
  const stage = await startInitStage(t);
  const first = await stage.init();
  await stage.vmm.stopVm(first.kms.vmId);
  const moved = { ...stage.config, init: { ...stage.config.init, kms_port: stage.kmsPort + 1 } };
  const err = await kmsFailure(stage.init({ config: moved }));
  assert.equal(err.code, 'INIT_KMS_PORT');
  assert.match(err.message, new RegExp(`set \\[init\\] kms_port = ${stage.kmsPort}`));
  assert.deepEqual(stage.mutations(), ['CreateVm', 'StopVm']);
});
