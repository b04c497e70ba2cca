// Issue 13 item 5 end to end: values no CVM can have (sizes, host ports the host keeps, service
// names compose refuses) are refusals of the file, docs/apps-dir.md rule 8: nothing deployed, nothing
// torn down, the running VM keeps running, the status says why in one sentence, and no pass
// tries again. Before, they were `failed`, retried with backoff, with a raw zod JSON dump.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { recordInitStep } from '../../src/init/journal.ts';
import { startHarness, composeText, freePorts } from '../helpers/harness.ts';
import { startWithApp, assertUntouched, statusOf, rescan } from '../helpers/rules.ts';

test('rule 8: a running app edited to memory: 9999999G keeps running its old content, is invalid in one sentence, and is not retried', async (t) => {
  const { h, vm, port, text } = await startWithApp(t);
  const mark = h.mutations().length;
  await h.put('x.yml', `${composeText(port, 'v2')}x-dstack:\n  memory: 9999999G\n`);
  const status = await statusOf(h, 'x', 'invalid');
  assert.equal(
    status.last_error,
    `${h.path('x.yml')}:8:11: x-dstack.memory: "9999999G" (10239998976 MB) is more than 64T (67108864 MB), the most a CVM can have; give at most 64T`,
  );
  // Two more full passes (each re-lists every VM and looks at every app), then a later app
  // deployed: no UpdateVm or CreateVm for x, and its one journal line is not repeated.
  await rescan(h);
  await rescan(h);
  await assertUntouched(h, mark, vm, text);
  assert.equal(h.decisions('x', 'invalid').length, 1);
  assert.equal((await h.statuses()).find((s) => s.app === 'x')?.phase, 'invalid');
});

test('rule 8: new files asking for what no CVM can have are refused before any CreateVm, each naming why', async (t) => {
  const h = await startHarness(t);
  const [kmsPort = 0, webPort = 0] = await freePorts(2);
  // As init leaves it: the KMS CVM's host port in <state_dir>/init.json.
  await recordInitStep(h.config.state_dir, 'render', { kms_port: kmsPort }, () => Date.now());
  const web = (extra: string) => `services:\n  web:\n    image: nginx:1.27\n${extra}`;
  const files: [string, string, RegExp][] = [
    ['cpus', web('x-dstack:\n  vcpu: 100000\n'), /cpus\.yml:5:9: x-dstack\.vcpu: 100000 vCPUs is more than 1024 vCPUs, the most a CVM can have; give at most 1024$/],
    ['mem', web('x-dstack:\n  memory: 1e300\n'), /mem\.yml:5:11: x-dstack\.memory: 1e\+300 MB is more than 64T \(67108864 MB\)/],
    ['low', web('    ports: ["1-1024:1-1024"]\n'), /low\.yml:4:13: .*host port 1\/tcp is below 1024, .*\[apps\] privileged_ports \(now 80, 443\)$/],
    ['kms', web(`    ports: ["${kmsPort}:80"]\n`), new RegExp(`kms\\.yml:4:13: .*host port ${kmsPort}/tcp is the KMS's \\(init\\); publish the app on another port$`)],
    ['path', `services:\n  "../../etc":\n    image: nginx:1.27\n    ports: ["${webPort}:80"]\n`, /path\.yml:3:5: service name "\.\.\/\.\.\/etc" is not one docker compose accepts/],
  ];
  for (const [name, text] of files) await h.put(`${name}.yml`, text);
  await h.start();
  for (const [name, , sentence] of files) {
    const status = await statusOf(h, name, 'invalid');
    assert.match(status.last_error ?? '', sentence);
    assert.doesNotMatch(status.last_error ?? '', /[{}\n]|"code"/, 'one sentence, no JSON dump');
  }
  await rescan(h);
  await h.checkpoint();
  assert.deepEqual(h.mutations(), ['CreateVm'], 'only the checkpoint app was ever created');
  assert.deepEqual(h.sim.state.list().map((v) => v.name), ['checkpoint-1']);
  for (const [name] of files) assert.equal(h.decisions(name, 'invalid').length, 1, `${name}: one journal line`);
});
