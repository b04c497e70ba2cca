import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { AppError } from '../../src/app/errors.ts';
import { buildAppSpec, reviewAppSpec } from '../../src/app/spec.ts';
import type { AppWarning } from '../../src/app/warning.ts';

// Issue 8: the 25 docker awesome-compose samples (test/fixtures/corpus, CC0), each classified
// exactly: every refusal, every warning and every derived host port.
const CORPUS = join(import.meta.dirname, '../fixtures/corpus');
const EXPECTATIONS = join(import.meta.dirname, '../fixtures/corpus-expectations');
const DEFAULTS = { image: 'dstack-0.5.11', vcpu: 2, memory: 2048, disk: 20, portAddress: '127.0.0.1' };
// The samples publish 80, 81 and 82; the shipped `[apps] privileged_ports = [80, 443]` refuses 81
// and 82 (the last test); these tests classify them as on a host whose operator allowed those.
const HOST_PORTS = { privileged: [80, 81, 82], reserved: [] };

type Expectation = { ports: string[]; refusals: AppWarning[]; warnings: AppWarning[] };

const files = readdirSync(CORPUS).filter((f) => f.endsWith('.yaml')).sort();

test('the corpus has 25 files and one expectation each', () => {
  assert.equal(files.length, 25);
  const expectations = readdirSync(EXPECTATIONS).filter((f) => f.endsWith('.json')).sort();
  assert.deepEqual(expectations, files.map((f) => f.replace(/\.yaml$/, '.json')));
});

for (const file of files) {
  const name = file.replace(/\.yaml$/, '');
  test(`corpus ${file}`, () => {
    const expected: Expectation = JSON.parse(readFileSync(join(EXPECTATIONS, `${name}.json`), 'utf8'));
    const input = { name, file: `apps.d/${file}`, text: readFileSync(join(CORPUS, file), 'utf8'), defaults: DEFAULTS, hostPorts: HOST_PORTS };
    const { spec, refusal } = reviewAppSpec(input);
    assert.deepEqual(
      spec.ports.map((p) => `${p.protocol} ${p.host_address}:${p.host_port}>${p.vm_port}`),
      expected.ports,
    );
    assert.deepEqual(refusal?.refusals ?? [], expected.refusals);
    assert.deepEqual(spec.warnings, expected.warnings);
    if (expected.refusals.length === 0) {
      assert.equal(buildAppSpec(input).composeHash, spec.composeHash);
    } else {
      // A refused file never yields a spec, so it never reaches the VMM.
      assert.throws(() => buildAppSpec(input), (err: unknown) => err instanceof AppError && err.code === 'APP_REFUSED');
      assert.deepEqual(refusal?.warnings, expected.warnings);
    }
  });
}

test('corpus summary: which samples deploy as they are', () => {
  const deployable = files.filter((file) => {
    const name = file.replace(/\.yaml$/, '');
    const text = readFileSync(join(CORPUS, file), 'utf8');
    return reviewAppSpec({ name, file, text, defaults: DEFAULTS, hostPorts: HOST_PORTS }).refusal === undefined;
  });
  assert.deepEqual(deployable, [
    'minecraft.yaml',
    'nextcloud-postgres.yaml',
    'portainer.yaml',
    'postgresql-pgadmin.yaml',
    'wasmedge-mysql-nginx.yaml',
    'wordpress-mysql.yaml',
  ]);
});

test('corpus: with the shipped [apps] privileged_ports, port 80 deploys and a sample publishing 81 is refused naming the key', () => {
  const build = (name: string) =>
    buildAppSpec({ name, file: `apps.d/${name}.yaml`, text: readFileSync(join(CORPUS, `${name}.yaml`), 'utf8'), defaults: DEFAULTS });
  assert.deepEqual(build('wordpress-mysql').ports.map((p) => p.host_port), [80]);
  assert.throws(
    () => build('nginx-nodejs-redis'),
    (err: unknown) => err instanceof AppError && err.code === 'APP_PORTS' && /host port 81\/tcp is below 1024.*\[apps\] privileged_ports \(now 80, 443\)/.test(err.message),
  );
});
