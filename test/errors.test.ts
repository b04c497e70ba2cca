import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SupervisorError, describeError } from '../src/errors.ts';

test('SupervisorError carries a stable code beside its message', () => {
  const err = new SupervisorError('E_X', 'apps.d/a.yaml: broken');
  assert.equal(err.code, 'E_X');
  assert.equal(describeError(err), 'apps.d/a.yaml: broken');
  assert.equal(describeError('plain'), 'plain');
});
