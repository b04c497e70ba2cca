import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthConfigSchema } from '../../src/auth/schema.ts';
import { BootInfoSchema, decideBoot, type BootKind } from '../../src/sim/boot-auth-rules.ts';

const OS = 'aa'.repeat(32);
const APP = 'bb'.repeat(20);
const HASH = 'cc'.repeat(32);
const MR = 'dd'.repeat(48);
const DEVICE = 'ee'.repeat(32);

const GOOD_BOOT = {
  mrAggregated: MR,
  osImageHash: OS,
  appId: APP,
  composeHash: HASH,
  instanceId: '11'.repeat(20),
  deviceId: DEVICE,
  tcbStatus: 'UpToDate',
  advisoryIds: [],
};

const GOOD_CONFIG = {
  gatewayAppId: 'gw',
  osImages: [`0x${OS}`],
  kms: { mrAggregated: [MR] },
  apps: { [`0x${APP}`]: { composeHashes: [`0x${HASH}`] } },
};

function decide(config: Record<string, unknown>, boot: Record<string, unknown>, kind: BootKind = 'app') {
  return decideBoot(AuthConfigSchema.parse(config), BootInfoSchema.parse({ ...GOOD_BOOT, ...boot }), kind);
}

test('the good case is allowed with reason "" and the gatewayAppId', () => {
  assert.deepEqual(decide(GOOD_CONFIG, {}), { isAllowed: true, reason: '', gatewayAppId: 'gw' });
  assert.deepEqual(decide(GOOD_CONFIG, {}, 'kms'), { isAllowed: true, reason: '', gatewayAppId: 'gw' });
});

// Each row breaks everything from its check onwards, so only the rule order picks the reason.
test('checks run in auth-simple order: TCB, advisories, OS image, then app or KMS rules', () => {
  const rows: [string, Record<string, unknown>, Record<string, unknown>, BootKind, string][] = [
    ['tcb', { osImages: [] }, { tcbStatus: 'OutOfDate', advisoryIds: ['INTEL-SA-1'] }, 'app', 'TCB status is not allowed'],
    ['missing tcb', {}, { tcbStatus: undefined }, 'app', 'TCB status is not allowed'],
    ['advisory', { osImages: [] }, { advisoryIds: ['INTEL-SA-1'] }, 'app', 'advisory ID is not allowed'],
    ['os image', { osImages: [], apps: {} }, {}, 'app', 'OS image is not allowed'],
    ['app', { apps: {} }, {}, 'app', 'app not registered'],
    ['hash', { apps: { [APP]: { composeHashes: [], devices: ['ff'] } } }, {}, 'app', 'compose hash not allowed'],
    ['app device', { apps: { [APP]: { composeHashes: [HASH], devices: ['ff'] } } }, {}, 'app', 'app is not allowed to boot on this device'],
    ['kms mr', { kms: { mrAggregated: [], devices: ['ff'] } }, {}, 'kms', 'aggregated MR not allowed'],
    ['kms device', { kms: { mrAggregated: [MR], devices: ['ff'] } }, {}, 'kms', 'KMS is not allowed to boot on this device'],
  ];
  for (const [label, config, boot, kind, reason] of rows) {
    const result = decide({ ...GOOD_CONFIG, ...config }, boot, kind);
    assert.deepEqual([label, result.isAllowed, result.reason], [label, false, reason]);
  }
});

test('an empty device list passes; allowAnyDevice passes a listed-but-other device', () => {
  assert.equal(decide({ ...GOOD_CONFIG, apps: { [APP]: { composeHashes: [HASH], devices: [] } } }, {}).isAllowed, true);
  const any = { [APP]: { composeHashes: [HASH], devices: ['ff'], allowAnyDevice: true } };
  assert.equal(decide({ ...GOOD_CONFIG, apps: any }, {}).isAllowed, true);
  assert.equal(decide({ ...GOOD_CONFIG, apps: { [APP]: { composeHashes: [HASH], devices: [DEVICE] } } }, {}).isAllowed, true);
});

test('hex compares lowercase with 0x added, but is not trimmed', () => {
  const upper = { ...GOOD_CONFIG, osImages: [OS.toUpperCase()], apps: { [APP.toUpperCase()]: { composeHashes: [`0X${HASH}`] } } };
  // Lowercasing comes first, so even an upper-case 0X prefix matches.
  assert.equal(decide(upper, { appId: `0x${APP}` }).isAllowed, true);
  assert.equal(decide(GOOD_CONFIG, { composeHash: HASH.toUpperCase() }).isAllowed, true);
  assert.equal(decide({ ...GOOD_CONFIG, osImages: [` ${OS}`] }, {}).reason, 'OS image is not allowed');
});

test('the default config denies everything (empty osImages)', () => {
  assert.equal(decide({}, {}).reason, 'OS image is not allowed');
});
