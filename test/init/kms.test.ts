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

// Issue 16 item 4: on TDX the KMS's sealing key derives from its measurement, so a KMS with keys
// is never changed and never silently replaced.
test('issue 16: on a real host a KMS CVM gone since init is key loss: refused, nothing created, the way out named', async (t) => {
  const stage = await startInitStage(t, { realHost: true });
  const first = await stage.init();
  await stage.vmm.removeVm(first.kms.vmId);
  await stage.sim.state.waitFor((vms) => vms.length === 0);
  const err = await kmsFailure(stage.init());
  assert.equal(err.code, 'INIT_KMS_LOST');
  assert.match(err.message, new RegExp(`^init kms: the KMS CVM ${first.kms.vmId} that init recorded is gone from dstack-vmm, and with it the root keys every app's keys derive from`));
  assert.match(err.message, /Nothing was created; .*dstack-supervisor destroy --purge, then start the service again$/);
  assert.deepEqual(stage.mutations(), ['CreateVm', 'RemoveVm'], 'no second KMS');
});

test('issue 16: a KMS setting changed after bootstrap is refused, never applied; set back, init passes with no VMM change', async (t) => {
  const stage = await startInitStage(t, { realHost: true });
  const first = await stage.init();
  const changed = { ...stage.config, init: { ...stage.config.init, kms_verify_image: !stage.config.init.kms_verify_image } };
  const err = await kmsFailure(stage.init({ config: changed }));
  assert.equal(err.code, 'INIT_KMS_FROZEN');
  assert.equal(err.vmId, first.kms.vmId);
  assert.match(err.message, /has its keys, and init would now make it with a different app-compose \(kms\.toml, or the \[init\] keys rendered into it\)\. Its sealing key derives from its measurement/);
  assert.deepEqual(stage.mutations(), ['CreateVm'], 'the KMS CVM is not touched');
  assert.equal(stage.sim.state.get(first.kms.vmId)?.status, 'running');

  const again = await stage.init();
  assert.equal(again.kms.vmId, first.kms.vmId);
  assert.deepEqual(stage.mutations(), ['CreateVm']);
});
