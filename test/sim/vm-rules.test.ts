import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  appIdOfCompose,
  checkPortConflicts,
  hashCompose,
  isValidImageName,
  parseAppCompose,
  resolveAppId,
  resolveCreatePorts,
  resolveUpdatePorts,
  validateName,
  type PortMappingConfig,
} from '../../src/sim/vm-rules.ts';

const RANGE: PortMappingConfig = { enabled: true, address: '127.0.0.1', range: [{ protocol: 'tcp', from: 1, to: 20000 }] };
const tcp = (host_port: number, host_address = '127.0.0.1') => ({ protocol: 'tcp', host_port, vm_port: 80, host_address });

test('names allow alphanumerics (Unicode too) and - _ . space @ ~ ! $ ^ ( ), nothing else', () => {
  for (const ok of ['web', 'my app (v2)', 'a-b_c.d@e~f!g$h^i', 'ünï', '']) validateName(ok);
  for (const bad of ['a/b', 'a:b', 'a;b', 'a"b', 'tab\there']) {
    assert.throws(() => validateName(bad), { code: 'SIM_VMM_REJECTED', message: `Invalid name: ${bad}` });
  }
});

test('image names: at most 64 chars of [A-Za-z0-9_.-] without ".."', () => {
  assert.ok(isValidImageName('dstack-0.5.11'));
  assert.ok(!isValidImageName('../etc'));
  assert.ok(!isValidImageName('a..b'));
  assert.ok(!isValidImageName('a/b'));
  assert.ok(!isValidImageName('x'.repeat(65)));
});

test('compose hash is sha256 of the exact string; app id is its first 40 hex chars', () => {
  assert.equal(hashCompose('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(appIdOfCompose('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a3');
  assert.notEqual(hashCompose('{"a":1}'), hashCompose('{ "a": 1 }'));
});

test('a given app id loses one 0x and is lowercased; none means the compose default', () => {
  assert.equal(resolveAppId('0xABCDEF', 'x'), 'abcdef');
  assert.equal(resolveAppId('ABCDEF', 'x'), 'abcdef');
  assert.equal(resolveAppId(undefined, 'abc'), appIdOfCompose('abc'));
});

test('AppCompose needs manifest_version, name and runner; key_provider beats the flags', () => {
  const base = { manifest_version: 2, name: 'a', runner: 'docker-compose' };
  assert.equal(parseAppCompose(JSON.stringify(base)).keyProvider, 'none');
  assert.equal(parseAppCompose(JSON.stringify({ ...base, kms_enabled: true })).keyProvider, 'kms');
  assert.equal(parseAppCompose(JSON.stringify({ ...base, local_key_provider_enabled: true })).keyProvider, 'local');
  assert.equal(parseAppCompose(JSON.stringify({ ...base, kms_enabled: true, key_provider: 'none' })).keyProvider, 'none');
  assert.equal(parseAppCompose(JSON.stringify({ ...base, manifest_version: '3' })).name, 'a');
  assert.throws(() => parseAppCompose(JSON.stringify({ manifest_version: 2, name: 'a' })), /missing field `runner`/);
  assert.throws(() => parseAppCompose('name: a'), { code: 'SIM_VMM_REJECTED' });
  assert.throws(() => parseAppCompose(JSON.stringify({ ...base, manifest_version: 'two' })), /manifest_version/);
});

test('CreateVm ports: mapping must be enabled, each tcp port inside the range, empty address filled', () => {
  assert.deepEqual(resolveCreatePorts([tcp(8080, '')], RANGE), [{ ...tcp(8080), protocol: 'tcp' }]);
  assert.throws(() => resolveCreatePorts([tcp(20001)], RANGE), { message: 'Port mapping is not allowed for tcp:20001' });
  assert.throws(() => resolveCreatePorts([{ ...tcp(53), protocol: 'udp' }], RANGE), {
    message: 'Port mapping is not allowed for udp:53',
  });
  assert.throws(() => resolveCreatePorts([tcp(80)], { ...RANGE, enabled: false }), { message: 'Port mapping is disabled' });
  assert.deepEqual(resolveCreatePorts([], { ...RANGE, enabled: false }), []);
  assert.throws(() => resolveCreatePorts([tcp(80, 'localhost')], RANGE), { message: 'Invalid host address' });
});

test('UpdateVm ports skip the range check but refuse an empty host address', () => {
  assert.equal(resolveUpdatePorts([tcp(30000)])[0]?.host_port, 30000);
  assert.throws(() => resolveUpdatePorts([tcp(8080, '')]), { message: 'Invalid host address' });
});

test('port conflicts: same protocol and port on an overlapping address, or twice in one request', () => {
  const holder = { id: 'id-1', name: 'blog', ports: resolveUpdatePorts([tcp(8080)]) };
  // Upstream's texts (main_service.rs validate_port_mapping_conflicts, validate_unique_port_mappings).
  assert.throws(() => checkPortConflicts(resolveUpdatePorts([tcp(8080)]), [holder]), {
    message: 'host port mapping conflicts with VM id-1: tcp 127.0.0.1:8080',
  });
  assert.throws(() => checkPortConflicts(resolveUpdatePorts([tcp(8080, '0.0.0.0')]), [holder]), /conflicts with VM id-1: tcp 0\.0\.0\.0:8080/);
  checkPortConflicts(resolveUpdatePorts([tcp(8080, '127.0.0.2')]), [holder]);
  checkPortConflicts(resolveUpdatePorts([{ ...tcp(8080), protocol: 'udp' }]), [holder]);
  assert.throws(() => checkPortConflicts(resolveUpdatePorts([tcp(9000), tcp(9000)]), []), { message: 'duplicate host port mapping: tcp 127.0.0.1:9000' });
});

