import { test } from 'node:test';
import assert from 'node:assert/strict';
import { failureOf, specOf } from './helpers.ts';

// [case, compose text, env keys, expected "service/key" of every warning]
const WARNED: [string, string, string[], string[]][] = [
  ['build with image', 'services:\n  web:\n    build: .\n    image: ghcr.io/me/web:1\n', [], ['web/build']],
  ['relative bind mount', 'services:\n  web:\n    image: nginx\n    volumes: ["./conf:/etc/app:ro"]\n', [], ['web/volumes']],
  ['absolute bind mount', 'services:\n  web:\n    image: nginx\n    volumes: ["/srv/data:/data"]\n', [], ['web/volumes']],
  ['home bind mount', 'services:\n  web:\n    image: nginx\n    volumes: ["~/data:/data"]\n', [], ['web/volumes']],
  ['long-syntax bind', 'services:\n  web:\n    image: nginx\n    volumes:\n      - type: bind\n        source: ./conf\n        target: /etc/app\n', [], ['web/volumes']],
  ['named, anonymous and long volumes are fine', 'services:\n  web:\n    image: nginx\n    volumes: ["data:/data", "/cache", {type: volume, source: data, target: /x}]\nvolumes: {data: {}}\n', [], []],
  ['CVM sockets are fine', 'services:\n  web:\n    image: nginx\n    volumes: ["/var/run/docker.sock:/var/run/docker.sock", "/var/run/dstack.sock:/var/run/dstack.sock"]\n', [], []],
  ['file secret', 'services:\n  web:\n    image: nginx\n    secrets: [pw]\nsecrets:\n  pw:\n    file: ./pw.txt\n', [], ['/secrets.pw']],
  ['environment secret', 'services:\n  web:\n    image: nginx\n    secrets: [pw]\nsecrets:\n  pw:\n    environment: PW\n', [], []],
  ['file config', 'services:\n  web: {image: nginx}\nconfigs:\n  nginx:\n    file: ./nginx.conf\n', [], ['/configs.nginx']],
  ['content config', 'services:\n  web: {image: nginx}\nconfigs:\n  nginx:\n    content: "server {}"\n', [], []],
  ['env_file string', 'services:\n  web:\n    image: nginx\n    env_file: .env\n', [], ['web/env_file']],
  ['env_file list', 'services:\n  web:\n    image: nginx\n    env_file: [a.env, {path: b.env, required: false}]\n', [], ['web/env_file']],
  ['unset ${VAR}', 'services:\n  web:\n    image: "nginx:${TAG}"\n    environment: [A=$A, "B=${B}"]\n', [], ['web/environment', 'web/image']],
  ['${VAR} set in NAME.env', 'services:\n  web:\n    image: nginx\n    environment: [A=$A]\n', ['A'], []],
  ['${VAR:-default}', 'services:\n  web:\n    image: "nginx:${TAG:-1.27}"\n', [], []],
  ['$$ escape', 'services:\n  web:\n    image: nginx\n    command: echo $$HOME\n', [], []],
  ['${VAR} at file level', 'services:\n  web: {image: nginx}\nvolumes:\n  data:\n    name: ${VOLUME}\n', [], ['/volumes']],
  ['x- extension values are not checked', 'x-tag: ${TAG}\nservices:\n  web: {image: nginx}\n', [], []],
  ['network_mode host', 'services:\n  web:\n    image: nginx\n    network_mode: host\n', [], ['web/network_mode']],
  ['other runtime', 'services:\n  web:\n    image: nginx\n    runtime: io.containerd.wasmedge.v1\n', [], ['web/runtime']],
  ['runc runtime', 'services:\n  web:\n    image: nginx\n    runtime: runc\n', [], []],
  ['extends in the same file', 'services:\n  base: {image: nginx}\n  web:\n    extends: base\n  api:\n    extends: {service: base}\n', [], []],
  [
    'a service in a profile is only reported as inactive',
    'services:\n  web: {image: nginx}\n  debug:\n    profiles: [debug]\n    build: .\n    volumes: ["./x:/x"]\n    environment: ["A=${A:?}"]\n',
    [],
    ['debug/profiles'],
  ],
];

for (const [name, text, envKeys, expected] of WARNED) {
  test(`compat warns: ${name}`, () => {
    const spec = specOf(text, envKeys);
    assert.deepEqual(
      spec.warnings.map((w) => `${w.service}/${w.key}`),
      expected,
    );
  });
}

// [case, compose text, env keys, expected "service/key" of every refusal, message fragment]
const REFUSED: [string, string, string[], string[], RegExp][] = [
  ['build without image', 'services:\n  web:\n    build: .\n', [], ['web/build'], /a CVM cannot build .* push the image to a registry/],
  ['build with empty image', 'services:\n  web:\n    build: .\n    image: ""\n', [], ['web/build'], /no `image:`/],
  ['extends another file', 'services:\n  web:\n    extends:\n      file: common.yaml\n      service: base\n', [], ['web/extends'], /reads common\.yaml, which is not in the CVM/],
  ['include', 'include: [other.yaml]\nservices:\n  web: {image: nginx}\n', [], ['/include'], /`include:` pulls in other compose files/],
  [
    'neither image nor build',
    'services:\n  web:\n    ports: ["8080:80"]\n',
    [],
    ['web/image'],
    /^apps\.d\/web\.yaml:3:5: cannot run in a CVM as written: service web: image: is missing and there is no `build:`, .*add `image: <registry>\/<name>:<tag>`/,
  ],
  ['empty image and no build', 'services:\n  web:\n    image: ""\n', [], ['web/image'], /service web: image: is empty and there is no `build:`/],
  [
    'neither image nor build, beside a service with image and one with build (which keeps its own refusal)',
    'services:\n  api:\n    image: nginx\n  worker:\n    build: ./worker\n  web: {}\n',
    [],
    ['web/image', 'worker/build'],
    /service worker: build: has `build:` but no `image:`.*; service web: image: is missing/,
  ],
  [
    'neither image nor build, beside an inactive service without either (compose checks active services only)',
    'services:\n  web: {}\n  debug:\n    profiles: [debug]\n',
    [],
    ['web/image'],
    /service web: image: is missing/,
  ],
  ['extends a service with neither', 'services:\n  base:\n    environment: [A=1]\n  web:\n    extends: base\n', [], ['base/image', 'web/image'], /service base: image: is missing/],
  [
    'required variable unset',
    'services:\n  db:\n    image: postgres\n    environment:\n      PW: ${DB_PW:?set the database password}\n',
    [],
    ['db/environment'],
    /\$\{DB_PW\} is required \("set the database password"\) and web\.env does not set it; add DB_PW=\.\.\. to web\.env/,
  ],
];

for (const [name, text, envKeys, expected, message] of REFUSED) {
  test(`compat refuses: ${name}`, () => {
    const err = failureOf(text, 'APP_REFUSED', envKeys);
    assert.deepEqual(
      err.refusals.map((r) => `${r.service}/${r.key}`),
      expected,
    );
    assert.match(err.message, message);
  });
}

test('a required variable that NAME.env sets is fine', () => {
  assert.deepEqual(specOf('services:\n  db:\n    image: postgres\n    environment: ["PW=${PW:?}"]\n', ['PW']).warnings, []);
});

test('a refusal names every refused service, points at the first, and carries the warnings', () => {
  const text = 'services:\n  a:\n    build: ./a\n    volumes: ["./x:/x"]\n  b:\n    build: ./b\n';
  const err = failureOf(text, 'APP_REFUSED');
  assert.deepEqual(err.position, { line: 3, column: 12 });
  assert.match(err.message, /^apps\.d\/web\.yaml:3:12: cannot run in a CVM as written: service a: build: .*; service b: build: /);
  assert.deepEqual(
    err.warnings.map((w) => `${w.service}/${w.key}`),
    ['a/volumes'],
  );
});

test('warning messages name the key, why, and what to do instead', () => {
  const spec = specOf('services:\n  web:\n    image: nginx\n    volumes: ["./conf:/etc/app"]\n    env_file: .env\n    environment: ["A=${A}"]\n');
  const byKey = Object.fromEntries(spec.warnings.map((w) => [w.key, w.message]));
  assert.match(byKey['volumes'] ?? '', /host files are not visible inside the CVM.*named volume.*web\.env/);
  assert.match(byKey['env_file'] ?? '', /read from the host.*put the variables in web\.env/);
  assert.match(byKey['environment'] ?? '', /uses \$\{A\}, which web\.env does not set.*add it to web\.env/);
});

test('the file secret warning lists the services using it and the fix', () => {
  const spec = specOf('services:\n  db:\n    image: postgres\n    secrets: [db-pw]\n  api:\n    image: nginx\n    secrets: [{source: db-pw}]\nsecrets:\n  db-pw:\n    file: pw.txt\n');
  assert.equal(spec.warnings.length, 1);
  assert.match(spec.warnings[0]?.message ?? '', /secret db-pw \(used by db, api\) is read from pw\.txt.*`environment: DB_PW`.*web\.env/);
});
