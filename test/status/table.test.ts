import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatStatusTable } from '../../src/status/table.ts';
import { sampleStatus } from './sample.ts';

test('one aligned row per app, ids and hashes as 12-hex prefixes, absent values as -', () => {
  const text = formatStatusTable([
    sampleStatus(),
    sampleStatus({
      app: 'blog',
      file: 'blog.yml',
      phase: 'failed',
      app_id: null,
      vm_id: null,
      compose_hash: null,
      urls: [],
      last_error: 'CreateVm: port 8080 is outside the range\n  pick another port',
    }),
  ]);
  const lines = text.split('\n');
  assert.equal(lines.length, 3);
  assert.match(lines[0]!, /^APP +FILE +PHASE +APP ID +VM ID +HASH +URLS +LAST ERROR$/);
  assert.match(lines[1]!, /^shop +\/etc\/dstack\/apps\.d\/shop\.yaml +running +0123456789ab +6f1c2d3e-\S+ +fedcba987654 +http:\/\/127\.0\.0\.1:8080 +-$/);
  assert.match(lines[2]!, /^blog +blog\.yml +failed +- +- +- +- +CreateVm: port 8080 is outside the range pick another port$/);
  assert.equal(lines[1]!.indexOf('running'), lines[0]!.indexOf('PHASE'));
  assert.equal(lines[2]!.indexOf('failed'), lines[0]!.indexOf('PHASE'));
});

test('issue 19: a GPUS column with the PCI addresses each app holds, only on a host where some app has GPUs', () => {
  const lines = formatStatusTable([sampleStatus({ gpus: ['0000:18:00.0', '0000:2a:00.0'] }), sampleStatus({ app: 'blog', file: 'blog.yml', gpus: [] })]).split('\n');
  assert.match(lines[0]!, /^APP +FILE +PHASE +APP ID +VM ID +HASH +URLS +GPUS +LAST ERROR$/);
  assert.match(lines[1]!, / http:\/\/127\.0\.0\.1:8080 +0000:18:00\.0,0000:2a:00\.0 +-$/);
  assert.match(lines[2]!, / http:\/\/127\.0\.0\.1:8080 +- +-$/);
  assert.doesNotMatch(formatStatusTable([sampleStatus()]), /GPUS/);
});
