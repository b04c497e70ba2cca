import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { decodeComposeText } from '../../src/app/parse.ts';
import { buildAppSpec } from '../../src/app/spec.ts';
import type { AppSpec } from '../../src/app/spec.ts';

import { MANIFEST_FIELDS } from './helpers.ts';

const DIR = join(import.meta.dirname, '../fixtures/compose');
const DEFAULTS = { image: 'dstack-0.5.11', vcpu: 2, memory: 2048, disk: 20, portAddress: '127.0.0.1' };


// Per fixture: the host ports ("proto address:host>vm"), the (service/key) of each warning, and
// the compose hash. The hashes were cross-checked against an independent serializer (Python's
// json.dumps(indent=2, ensure_ascii=False), which escapes like serde_json) when pinned.
const EXPECTED: Record<string, { ports: string[]; warnings: string[]; hash: string }> = {
  'anchors.yaml': { ports: ['tcp 127.0.0.1:8082>8082'], warnings: [], hash: 'cfa35deb1f41a28272cf0c78b105a3b654a9fa93e0397769fc01448b680350f3' },
  'basic.yaml': { ports: ['tcp 127.0.0.1:8080>8080'], warnings: [], hash: 'b21a0ce801b6e58712311f5024d06241f922f617927f58d0940c30fa7d535647' },
  'block-scalars.yaml': { ports: ['tcp 127.0.0.1:8097>8097'], warnings: [], hash: '1816a14ae6811433f9313892544ff2787f512002c7379daa5816b817e89ac0d4' },
  'bom.yaml': { ports: ['tcp 127.0.0.1:8090>8090'], warnings: [], hash: 'cc0231349bea10b9feb17b65d195f5f28f2e9b452110461832177183160aeb5f' },
  'comments.yaml': { ports: ['tcp 127.0.0.1:8081>8081'], warnings: [], hash: 'b647ef9fbc25932cfccd1999e995f96d63216cf7ea59d51248626d6147bbbd4c' },
  'crlf.yaml': { ports: ['tcp 127.0.0.1:8083>8083'], warnings: [], hash: 'cd59b00f363a8aa9773b7db3cd188e2dfd9fc05ff582f4d99b62fbd24d7160c5' },
  'extensions.yaml': { ports: ['tcp 127.0.0.1:8102>8102'], warnings: [], hash: 'be1eae70c407289b63a0437d48675a11098d2653ac44650348edd19986431744' },
  'flow-style.yaml': {
    ports: ['tcp 127.0.0.1:8098>8098', 'tcp 127.0.0.1:8099>8099'],
    warnings: [],
    hash: 'd181d8665bf3d643c7dff047282ed8babf823c370a71396304cee7e7962fb6fc',
  },
  'ip-prefix.yaml': {
    ports: ['tcp 127.0.0.1:9300>9300', 'tcp 0.0.0.0:9301>9301', 'tcp ::1:9302>9302', 'tcp ::1:9303>9303'],
    warnings: ['web/ports', 'web/ports', 'web/ports'],
    hash: 'ade7d676fa062401486c33eddd9b5dd36eb3e17b21f8037fce2e62c7bf133c99',
  },
  'long-ports.yaml': {
    ports: ['tcp 127.0.0.1:8085>8085', 'tcp 0.0.0.0:8443>8443', 'tcp 127.0.0.1:9100>9100'],
    warnings: [],
    hash: 'b7b3480af34b616c0faae66894bd8069ff9d8431ca3c8d549a20af8fe682eb8f',
  },
  'multi-service.yaml': {
    ports: ['tcp 127.0.0.1:8093>8093', 'tcp 127.0.0.1:8094>8094'],
    warnings: [],
    hash: '3669aa9755b57e943fd2b0da30489dbefe2b933028af5dc72567bcc4070b7bdd',
  },
  'no-host-port.yaml': {
    ports: ['tcp 127.0.0.1:8092>8092'],
    warnings: ['web/ports', 'web/ports', 'web/ports', 'web/ports', 'web/ports'],
    hash: '278682089bfcf1734b5db36f48861c8d6c02ffae1970cc28d48a4d6e193d24b2',
  },
  'no-trailing-newline.yaml': { ports: ['tcp 127.0.0.1:8096>8096'], warnings: [], hash: '8b5d9c3cc542ab201dd94af356e54961a3b02fd7fb76525681814f298a4b97ec' },
  'profiles.yaml': { ports: ['tcp 127.0.0.1:8100>8100'], warnings: ['debug/profiles'], hash: 'a1d45097caa11b4356487f82ce5d96b5203ee212dedc0ba6e3330e3013cc73ff' },
  'quotes-backslashes.yaml': { ports: ['tcp 127.0.0.1:8095>8095'], warnings: [], hash: '9c8ff3f6989b3b908118cadfe5bd76b8c66c5f6e1d1e38133bfd97fc8d009ce9' },
  'ranges.yaml': {
    ports: [
      'tcp 127.0.0.1:8086>8086',
      'tcp 127.0.0.1:8087>8087',
      'tcp 127.0.0.1:8088>8088',
      'tcp 127.0.0.1:9000>9000',
      'udp 127.0.0.1:7000>7000',
      'udp 127.0.0.1:7001>7001',
    ],
    warnings: ['web/ports'],
    hash: 'a98fb3ba39fc30b708b0028860aef1dca9f2a2be1a1f3eb643d36cc23fab8b72',
  },
  'tabs.yaml': { ports: ['tcp 127.0.0.1:8091>8091'], warnings: [], hash: '8b60df34c7f03893f9445f8211abe70c7e63f20bd5e6298d9fde84e0675b3409' },
  'udp.yaml': {
    ports: ['tcp 127.0.0.1:5353>5353', 'udp 127.0.0.1:1123>1123', 'udp 127.0.0.1:5353>5353'],
    warnings: [],
    hash: 'b7ab8098489de8f55c0b6493e599d2ccc5252f17aa569a97260249464877d5d4',
  },
  'unicode.yaml': { ports: ['tcp 127.0.0.1:8084>8084'], warnings: [], hash: '14651ff8a13d05868a022fe62e5aab11724ffd2094037d594b2bd1e063385ba5' },
  'xdstack.yaml': {
    ports: ['tcp 127.0.0.1:18089>8089', 'udp 0.0.0.0:5300>53'],
    warnings: [],
    hash: 'e41c0429b67404b5d4d04dcc9f32eba081509f2f0371de4b102ff0596deaa8c4',
  },
};

function load(file: string): { bytes: Buffer; spec: AppSpec } {
  const bytes = readFileSync(join(DIR, file));
  const name = file.replace(/\.ya?ml$/, '');
  const text = decodeComposeText(file, bytes);
  const envKeys = name === 'basic' ? ['B_KEY', 'A_KEY'] : [];
  return { bytes, spec: buildAppSpec({ name, file, text, envKeys, defaults: DEFAULTS }) };
}

test('there are 20 fixtures and each has an expectation', () => {
  const files = readdirSync(DIR).filter((f) => /\.ya?ml$/.test(f)).sort();
  assert.equal(files.length, 20);
  assert.deepEqual(files, Object.keys(EXPECTED).sort());
});

for (const [file, expected] of Object.entries(EXPECTED)) {
  test(`fixture ${file}: manifest fields, hash, round trip, ports`, () => {
    const { bytes, spec } = load(file);
    const manifest: Record<string, unknown> = JSON.parse(spec.manifest);
    assert.deepEqual(Object.keys(manifest), MANIFEST_FIELDS);
    assert.equal(manifest['manifest_version'], 2);
    assert.equal(manifest['runner'], 'docker-compose');
    assert.equal(manifest['local_key_provider_enabled'], false);
    assert.equal(manifest['no_instance_id'], false);
    assert.equal(manifest['secure_time'], false);
    // The embedded compose file is the file, byte for byte (CRLF, BOM and all).
    assert.ok(Buffer.from(String(manifest['docker_compose_file']), 'utf8').equals(bytes));
    assert.equal(spec.composeHash, createHash('sha256').update(Buffer.from(spec.manifest, 'utf8')).digest('hex'));
    assert.equal(spec.manifest.endsWith('}'), true, 'no trailing newline, like serde_json');
    assert.equal(spec.composeHash, expected.hash);
    const ports = spec.ports.map((p) => `${p.protocol} ${p.host_address}:${p.host_port}>${p.vm_port}`);
    assert.deepEqual(ports, expected.ports);
    assert.deepEqual(
      spec.warnings.map((w) => `${w.service}/${w.key}`),
      expected.warnings,
    );
  });
}

test('x-dstack overrides reach the spec and the manifest', () => {
  const { spec } = load('xdstack.yaml');
  assert.deepEqual(
    { vcpu: spec.vcpu, memory: spec.memory, disk: spec.disk, image: spec.image, kms: spec.kms, logs: spec.publicLogs, sys: spec.publicSysinfo },
    { vcpu: 4, memory: 4096, disk: 40, image: 'dstack-0.5.11', kms: false, logs: false, sys: false },
  );
  const manifest = JSON.parse(spec.manifest);
  assert.equal(manifest.kms_enabled, false);
  assert.equal(manifest.public_logs, false);
  assert.equal(manifest.public_sysinfo, false);
});

test('defaults apply when x-dstack is absent, and env keys become sorted allowed_envs', () => {
  const { spec } = load('basic.yaml');
  assert.deepEqual(
    { vcpu: spec.vcpu, memory: spec.memory, disk: spec.disk, image: spec.image, kms: spec.kms, gateway: spec.gateway },
    { vcpu: 2, memory: 2048, disk: 20, image: 'dstack-0.5.11', kms: true, gateway: false },
  );
  assert.deepEqual(JSON.parse(spec.manifest).allowed_envs, ['A_KEY', 'B_KEY']);
  assert.deepEqual(spec.allowedEnvs, ['A_KEY', 'B_KEY']);
});
