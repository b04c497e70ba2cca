import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appIdOf, composeHashOf, renderEarlierManifest, renderManifest } from '../../src/app/manifest.ts';

const base = { name: 'web', kms: true, gateway: false, publicLogs: true, publicSysinfo: true, allowedEnvs: [] };

test('renders upstream field order and serde_json pretty layout, without a trailing newline', () => {
  const manifest = renderManifest({ ...base, composeText: 'services: {}\n', allowedEnvs: ['B', 'A'] });
  assert.equal(
    manifest,
    [
      '{',
      '  "manifest_version": 2,',
      '  "name": "web",',
      '  "runner": "docker-compose",',
      '  "docker_compose_file": "services: {}\\n",',
      '  "kms_enabled": true,',
      '  "gateway_enabled": false,',
      '  "local_key_provider_enabled": false,',
      '  "public_logs": true,',
      '  "public_sysinfo": true,',
      '  "no_instance_id": false,',
      '  "secure_time": false,',
      '  "allowed_envs": [',
      '    "A",',
      '    "B"',
      '  ]',
      '}',
    ].join('\n'),
  );
});

test('issue 16: without env names there is no allowed_envs key, as upstream dstack deploy writes it', () => {
  assert.match(renderManifest({ ...base, composeText: 'x' }), /\n {2}"secure_time": false\n\}$/);
  assert.doesNotMatch(renderManifest({ ...base, composeText: 'x' }), /allowed_envs/);
});

test('the earlier form is the same text with "allowed_envs": [] last, and exists only without env names', () => {
  const input = { ...base, composeText: 'services: {}\n' };
  const today = renderManifest(input);
  assert.equal(renderEarlierManifest(input), `${today.slice(0, -2)},\n  "allowed_envs": []\n}`);
  assert.equal(renderEarlierManifest({ ...input, allowedEnvs: ['A'] }), undefined);
});

test('escapes strings exactly like serde_json', () => {
  // serde_json: \" \\ \b \f \n \r \t, other C0 controls as \u00xx (lowercase hex); `/`, DEL,
  // non-ASCII, U+2028/2029 and emoji are written raw.
  const text = 'a"b\\c/d\b\f\n\r\t\u0000\u001f\u007f é 日本 🚀 \u2028\u2029\uFEFF';
  const manifest = renderManifest({ ...base, composeText: text });
  const line = manifest.split('\n').find((l) => l.startsWith('  "docker_compose_file"'));
  assert.equal(
    line,
    '  "docker_compose_file": "a\\"b\\\\c/d\\b\\f\\n\\r\\t\\u0000\\u001f\u007f é 日本 🚀 \u2028\u2029\uFEFF",',
  );
  assert.equal(JSON.parse(manifest).docker_compose_file, text);
});

test('CRLF is escaped, not normalised, so it changes the hash', () => {
  const lf = renderManifest({ ...base, composeText: 'services:\n  a: {}\n' });
  const crlf = renderManifest({ ...base, composeText: 'services:\r\n  a: {}\r\n' });
  assert.match(crlf, /services:\\r\\n {2}a: \{\}\\r\\n/);
  assert.notEqual(composeHashOf(lf), composeHashOf(crlf));
});

test('the compose hash is sha256 of the UTF-8 bytes, and the app id its first 40 hex digits', () => {
  const manifest = renderManifest({ ...base, composeText: 'é🚀' });
  const expected = createHash('sha256').update(Buffer.from(manifest, 'utf8')).digest('hex');
  assert.equal(composeHashOf(manifest), expected);
  assert.match(expected, /^[0-9a-f]{64}$/);
  assert.equal(appIdOf(expected), expected.slice(0, 40));
});

test('flags land in their fields', () => {
  const m = JSON.parse(renderManifest({ ...base, composeText: '', kms: false, gateway: true, publicLogs: false, publicSysinfo: false }));
  assert.deepEqual(
    [m.kms_enabled, m.gateway_enabled, m.public_logs, m.public_sysinfo],
    [false, true, false, false],
  );
});
