import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AppError } from '../../src/app/errors.ts';
import { decodeComposeText, parseCompose } from '../../src/app/parse.ts';

function parseFailure(text: string, code: string): AppError {
  try {
    parseCompose('apps.d/web.yaml', text);
  } catch (err) {
    assert.ok(err instanceof AppError);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail('expected a failure');
}

test('YAML syntax errors carry line and column', () => {
  const err = parseFailure('services:\n  web:\n    image: [nginx\n', 'APP_YAML');
  assert.ok(err.position && err.position.line >= 3, JSON.stringify(err.position));
  assert.match(err.message, /^apps\.d\/web\.yaml:\d+:\d+: is not valid YAML: .*; fix the syntax there$/s);
});

test('tabs as indentation are refused at their line', () => {
  const err = parseFailure('services:\n\tweb: {}\n', 'APP_YAML');
  assert.deepEqual(err.position, { line: 2, column: 1 });
});

test('duplicate keys are refused, as docker compose refuses them', () => {
  const err = parseFailure('services:\n  web: {}\n  web: {}\n', 'APP_YAML');
  assert.equal(err.position?.line, 3);
});

test('an empty file, or one with only comments, is APP_EMPTY', () => {
  for (const text of ['', '\n\n', '# nothing here\n', '---\n']) {
    assert.match(parseFailure(text, 'APP_EMPTY').message, /^apps\.d\/web\.yaml: is empty; .*delete the file/);
  }
});

test('more than one YAML document is refused at the second one', () => {
  const err = parseFailure('services: {}\n---\nservices: {}\n', 'APP_YAML');
  assert.equal(err.position?.line, 2);
  assert.match(err.message, /more than one YAML document/);
});

test('a billion-laughs alias bomb fails fast', () => {
  const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  const names = 'abcdefghij';
  for (let i = 1; i < names.length; i++) {
    levels.push(`${names[i]}: &${names[i]} [${Array(9).fill(`*${names[i - 1]}`).join(',')}]`);
  }
  const started = performance.now();
  assert.match(parseFailure(levels.join('\n') + '\n', 'APP_YAML').message, /alias bomb/);
  assert.ok(performance.now() - started < 1000, 'must not expand the bomb');
});

test('merge keys and anchors resolve', () => {
  const { data } = parseCompose('f.yaml', 'x: &base {a: 1, b: 2}\ny:\n  <<: *base\n  b: 3\n');
  assert.deepEqual(data, { x: { a: 1, b: 2 }, y: { a: 1, b: 3 } });
});

test('YAML 1.2: "80:80" stays a string (not a base-60 number)', () => {
  const { data } = parseCompose('f.yaml', 'p: 80:80\n');
  assert.deepEqual(data, { p: '80:80' });
});

test('locate() maps a data path to its line and column', () => {
  const parsed = parseCompose('f.yaml', 'services:\n  web:\n    ports:\n      - "80:80"\n');
  assert.deepEqual(parsed.locate(['services', 'web', 'ports', 0]), { line: 4, column: 9 });
  // A path that goes past the tree stops at the deepest node that exists.
  assert.deepEqual(parsed.locate(['services', 'web', 'nope']), { line: 3, column: 5 });
});

test('decoding keeps a BOM (as Rust read_to_string does), and YAML parses past it', () => {
  const bytes = Buffer.from('\uFEFFservices:\n  web: {}\n', 'utf8');
  const text = decodeComposeText('f.yaml', bytes);
  assert.equal(text.charCodeAt(0), 0xfeff);
  assert.deepEqual(parseCompose('f.yaml', text).data, { services: { web: {} } });
});

test('invalid UTF-8 is APP_ENCODING', () => {
  assert.throws(
    () => decodeComposeText('apps.d/web.yaml', Buffer.from([0x73, 0x3a, 0xff, 0x0a])),
    (err: unknown) => err instanceof AppError && err.code === 'APP_ENCODING' && /apps\.d\/web\.yaml: is not valid UTF-8/.test(err.message),
  );
});

test('a string with a lone surrogate is APP_ENCODING (it has no UTF-8 form to hash)', () => {
  parseFailure('services:\n  web: {image: "\uD800"}\n', 'APP_ENCODING');
});
