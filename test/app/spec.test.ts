import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AppError } from '../../src/app/errors.ts';
import { appDefaultsOf, buildAppSpec } from '../../src/app/spec.ts';
import { appNameOfFile } from '../../src/app/name.ts';
import { ConfigSchema } from '../../src/config.ts';
import { TEST_DEFAULTS, failureOf, specOf } from './helpers.ts';

const SCHEMA_ERRORS: [string, string, RegExp][] = [
  ['a list at the top level', '- a\n- b\n', /^apps\.d\/web\.yaml:1:1: the top level must be a mapping with a `services:` key/],
  ['a scalar at the top level', 'hello\n', /the top level must be a mapping/],
  ['no services key', 'version: "3.8"\nvolumes: {}\n', /^apps\.d\/web\.yaml:1:1: services: is missing/],
  ['services empty', 'services: {}\n', /^apps\.d\/web\.yaml:1:11: services: is empty; define at least one service/],
  ['services null', 'services:\n', /services: must be a mapping of service names/],
  ['services a list', 'services:\n  - web\n', /services: must be a mapping of service names/],
  ['a service with no body', 'services:\n  web:\n', /^apps\.d\/web\.yaml:2:7: services\.web: a service must be a mapping/],
  ['a service that is a string', 'services:\n  web: nginx\n', /services\.web: a service must be a mapping/],
  ['profiles not a list', 'services:\n  web:\n    profiles: debug\n', /services\.web\.profiles: must be a list/],
];

for (const [name, text, message] of SCHEMA_ERRORS) {
  test(`schema refuses ${name}`, () => {
    assert.match(failureOf(text, 'APP_SCHEMA').message, message);
  });
}

test('unknown compose keys are left alone (compose is the judge of those)', () => {
  const spec = specOf('version: "3.9"\nname: x\nservices:\n  web:\n    image: nginx\n    future_key: {a: 1}\nx-anything: 1\nsecrets: {}\n');
  assert.equal(spec.name, 'web');
});

test('a bad app name is APP_NAME and says how to fix it', () => {
  assert.throws(
    () => buildAppSpec({ name: 'My_App', file: 'apps.d/My_App.yaml', text: 'services: {web: {image: nginx}}\n', defaults: TEST_DEFAULTS }),
    (err: unknown) => err instanceof AppError && err.code === 'APP_NAME' && /rename it/.test(err.message),
  );
});

test('app names come from the file name without .yaml/.yml', () => {
  assert.equal(appNameOfFile('/etc/dstack/apps.d/shop.yaml'), 'shop');
  assert.equal(appNameOfFile('blog.yml'), 'blog');
  assert.equal(appNameOfFile('x.yaml.bak'), 'x.yaml.bak');
});

test('equal text gives an equal spec; a comment-only edit changes the hash (docs/apps-dir.md rule 23)', () => {
  const text = 'services:\n  web: {image: nginx}\n';
  assert.deepEqual(specOf(text), specOf(text));
  assert.notEqual(specOf(text).composeHash, specOf(text + '# note\n').composeHash);
});

test('env keys are deduplicated and sorted into allowed_envs', () => {
  const spec = specOf('services:\n  web: {image: nginx}\n', ['TOKEN', 'API_KEY', 'TOKEN']);
  assert.deepEqual(JSON.parse(spec.manifest).allowed_envs, ['API_KEY', 'TOKEN']);
});

test('appDefaultsOf maps supervisor.toml [apps]', () => {
  const config = ConfigSchema.parse({ apps: { image: 'img', vcpu: 3, memory: 1024, disk: 9, port_address: '0.0.0.0' } });
  assert.deepEqual(appDefaultsOf(config.apps), { image: 'img', vcpu: 3, memory: 1024, disk: 9, portAddress: '0.0.0.0' });
});

// Issue 13 item 5: compose-spec.json admits a service only under a name matching
// ^[a-zA-Z0-9._-]+$; "../../etc" or a control character was deployed and failed inside the CVM.
const SERVICE_NAMES: [string, string, string][] = [
  ['a path', '"../../etc"', '"../../etc"'],
  ['a control character', '"a\\x07b"', '"a\\u0007b"'],
  ['a newline', '"web\\nx"', '"web\\nx"'],
  ['a space', '"my web"', '"my web"'],
  ['a slash', 'a/b', '"a/b"'],
  ['non-ASCII letters', 'wéb', '"wéb"'],
  ['a very long bad name, cut short', `"${'x'.repeat(100)}/"`, `"${'x'.repeat(64)}…"`],
];

for (const [name, yamlKey, shown] of SERVICE_NAMES) {
  test(`schema refuses a service name with ${name}, naming it`, () => {
    const err = failureOf(`services:\n  ${yamlKey}:\n    image: nginx\n`, 'APP_SCHEMA');
    assert.ok(
      err.message.startsWith(`apps.d/web.yaml:3:5: service name ${shown} is not one docker compose accepts; rename the service with letters, digits`),
      err.message,
    );
    assert.doesNotMatch(err.message, /\n|[\x00-\x1f]/, 'the name is escaped, the message one line');
  });
}

test('schema accepts every service name compose does', () => {
  const spec = specOf('services:\n  web.1_a-B:\n    image: nginx\n  "2":\n    image: nginx\n  ..:\n    image: nginx\n');
  assert.equal(spec.name, 'web');
});
