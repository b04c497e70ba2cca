import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthConfigSchema, normalizeHexLikeAuthSimple } from '../../src/auth/schema.ts';

const ZERO = '0x0000000000000000000000000000000000000000';

test('an empty file parses to auth-simple defaults, nested ones included', () => {
  assert.deepEqual(AuthConfigSchema.parse({}), {
    gatewayAppId: '',
    kmsContractAddr: ZERO,
    appImplementation: ZERO,
    chainId: 0,
    osImages: [],
    allowedTcbStatuses: ['UpToDate'],
    allowedAdvisoryIds: [],
    kms: { mrAggregated: [], devices: [], allowAnyDevice: false },
    apps: {},
  });
});

test('app entries get their defaults and unknown keys are dropped, as zod does for auth-simple', () => {
  const parsed = AuthConfigSchema.parse({ apps: { abc: { composeHashes: ['ff'], note: 'x' } }, extra: true });
  assert.deepEqual(parsed.apps, { abc: { composeHashes: ['ff'], devices: [], allowAnyDevice: false } });
  assert.equal('extra' in parsed, false);
});

test('wrong types are rejected (auth-simple then denies everything)', () => {
  for (const bad of [{ chainId: '1' }, { apps: { a: { composeHashes: 'ff' } } }, { kms: { allowAnyDevice: 'yes' } }, { osImages: [1] }]) {
    assert.equal(AuthConfigSchema.safeParse(bad).success, false, JSON.stringify(bad));
  }
});

test('normalizeHexLikeAuthSimple lowercases and adds 0x, without trimming', () => {
  const cases: Array<[string, string]> = [
    ['ABCDEF', '0xabcdef'],
    ['0xAB', '0xab'],
    ['0XAB', '0xab'],
    [' ab', '0x ab'],
    ['', '0x'],
  ];
  for (const [input, expected] of cases) assert.equal(normalizeHexLikeAuthSimple(input), expected, input);
});
