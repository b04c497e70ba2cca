import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { decodeComposeText } from '../../src/app/parse.ts';
import { buildAppSpec } from '../../src/app/spec.ts';
import type { AppSpec } from '../../src/app/spec.ts';

import { MANIFEST_FIELDS, MANIFEST_FIELDS_WITH_ENVS } from './helpers.ts';

const DIR = join(import.meta.dirname, '../fixtures/compose');
const DEFAULTS = { image: 'dstack-0.5.11', vcpu: 2, memory: 2048, disk: 20, portAddress: '127.0.0.1' };


// Per fixture: the host ports ("proto address:host>vm"), the (service/key) of each warning, and
// the compose hash. The hashes were cross-checked against an independent serializer (Python's
// json.dumps(indent=2, ensure_ascii=False), which escapes like serde_json) when pinned, and pinned
// again for issue 16 (no `allowed_envs` key without env names; only basic.yaml has names).
const EXPECTED: Record<string, { ports: string[]; warnings: string[]; hash: string }> = {
  'anchors.yaml': { ports: ['tcp 127.0.0.1:8082>8082'], warnings: [], hash: 'f4e91944fe6bb48373466321e41c4ce932ddf4f9d3b87dcbefa7acce8ef56218' },
  'basic.yaml': { ports: ['tcp 127.0.0.1:8080>8080'], warnings: [], hash: 'b21a0ce801b6e58712311f5024d06241f922f617927f58d0940c30fa7d535647' },
  'block-scalars.yaml': { ports: ['tcp 127.0.0.1:8097>8097'], warnings: [], hash: '13b757530ca052dff3f722375b7dc48d9ce7d319e6db39a3bfeb243637e7bc2a' },
  'bom.yaml': { ports: ['tcp 127.0.0.1:8090>8090'], warnings: [], hash: '2eed17f6d10b4f24369e6c49985775890ae8fb35c01aef636c4de6279c2a2b29' },
  'comments.yaml': { ports: ['tcp 127.0.0.1:8081>8081'], warnings: [], hash: 'caa2f99073f49f7f62cfec040aca9514db01858a30998eb26693d63837feae48' },
  'crlf.yaml': { ports: ['tcp 127.0.0.1:8083>8083'], warnings: [], hash: 'ab602ad0f3275778383e4343bbde576d3a19dbb674c613abf76e6842fb3d3eb7' },
  'extensions.yaml': { ports: ['tcp 127.0.0.1:8102>8102'], warnings: [], hash: '28f29d2d770647808b75873022f2c622b109b0c29d039dbc45dcbd88b7369345' },
  'flow-style.yaml': {
    ports: ['tcp 127.0.0.1:8098>8098', 'tcp 127.0.0.1:8099>8099'],
    warnings: [],
    hash: '3fe81306be0c40bcb0819fe37a7f112256035dc66d23cdf6889cb54defc7d0a3',
  },
  'ip-prefix.yaml': {
    ports: ['tcp 127.0.0.1:9300>9300', 'tcp 0.0.0.0:9301>9301', 'tcp ::1:9302>9302', 'tcp ::1:9303>9303'],
    warnings: ['web/ports', 'web/ports', 'web/ports'],
    hash: '73565a91e51c558e7c68376f1ed53cd337519c5ae3d6e54fc52e52a17b3de985',
  },
  'long-ports.yaml': {
    ports: ['tcp 127.0.0.1:8085>8085', 'tcp 0.0.0.0:8443>8443', 'tcp 127.0.0.1:9100>9100'],
    warnings: [],
    hash: '0711050ae2f352b07d3351e9b986631258338f6f1a9fd02337555c8dae740de8',
  },
  'multi-service.yaml': {
    ports: ['tcp 127.0.0.1:8093>8093', 'tcp 127.0.0.1:8094>8094'],
    warnings: [],
    hash: '483500296cb088c3720fa9328a5a62085cbb6b4fda6df01aa1b269907e2ff41a',
  },
  'no-host-port.yaml': {
    ports: ['tcp 127.0.0.1:8092>8092'],
    warnings: ['web/ports', 'web/ports', 'web/ports', 'web/ports', 'web/ports'],
    hash: 'ad253128851b1dd12ce62deb9866c1084ae33561c29a20a1e51d9b98434026c8',
  },
  'no-trailing-newline.yaml': { ports: ['tcp 127.0.0.1:8096>8096'], warnings: [], hash: '6a49be11f1df33acb5e6b6dbfcb58d8f7973a7b02c94fcedc2cedd81901643bf' },
  'profiles.yaml': { ports: ['tcp 127.0.0.1:8100>8100'], warnings: ['debug/profiles'], hash: 'c9243cc635b6e261b6f76f5615bc19e900456ccf296fb393be28afdf7b248234' },
  'quotes-backslashes.yaml': { ports: ['tcp 127.0.0.1:8095>8095'], warnings: [], hash: '64229c30a93d23f7406a4d6e75fb488b62b9577e13ecec2337a7747817f11c66' },
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
    hash: '3cd1649c1eae92378f042719c2fb55e64155d0a707d51a8495de443a9c04afd4',
  },
  'tabs.yaml': { ports: ['tcp 127.0.0.1:8091>8091'], warnings: [], hash: '5f1a7121eb2c411203fb201d4cd3bbad6aec7146cc406e3cc18a3c2d6182d3a9' },
  'udp.yaml': {
    ports: ['tcp 127.0.0.1:5353>5353', 'udp 127.0.0.1:1123>1123', 'udp 127.0.0.1:5353>5353'],
    warnings: [],
    hash: 'f47ab9af1bb7355b9c24e8ec75940ef52079580db238c6ea39333eb2418cbf0c',
  },
  'unicode.yaml': { ports: ['tcp 127.0.0.1:8084>8084'], warnings: [], hash: '83d5f1f5e222dade373d43538fbbff9f24e0a585193a07322da5536f50a02394' },
  'xdstack.yaml': {
    ports: ['tcp 127.0.0.1:18089>8089', 'udp 0.0.0.0:5300>53'],
    warnings: [],
    hash: 'a9ca32e3f7340c1b02dd311594de9a38a0d13edd3d9d59a657745043af848967',
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
    assert.deepEqual(Object.keys(manifest), file === 'basic.yaml' ? MANIFEST_FIELDS_WITH_ENVS : MANIFEST_FIELDS);
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
