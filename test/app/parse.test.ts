import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AppError } from '../../src/app/errors.ts';
import { decodeComposeText, parseCompose } from '../../src/app/parse.ts';
import { manyKeysYaml, mergeAmplifiedYaml } from '../helpers/hostile-yaml.ts';

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

// Issue 13: one file held the event loop, and so every other app's deploy and SIGTERM.
test('50 000 keys under x-junk are refused at the node past the limit, without parsing the rest', () => {
  const err = parseFailure(manyKeysYaml(50_000), 'APP_YAML');
  assert.match(err.message, /^apps\.d\/web\.yaml:\d+:\d+: has more than 20000 YAML nodes \(keys, values and list items; .*move bulk data out of it/);
  // The count stops where the limit is passed, a third of the way into the 50 004-line file.
  assert.ok(err.position && err.position.line < 10_000, JSON.stringify(err.position));
});

test('an alias bomb under yaml\'s alias-count limit is refused by the nodes its aliases bring in', () => {
  const services = Array.from({ length: 99 }, (_, i) => `  s${i}:\n    image: nginx\n    command: *big\n`).join('');
  const bombs = {
    merges: mergeAmplifiedYaml(5_000, 99),
    sequences: `x-big: &big [${Array(6_000).fill('"${X}"').join(', ')}]\nservices:\n${services}`,
  };
  for (const [shape, text] of Object.entries(bombs)) {
    const err = parseFailure(text, 'APP_YAML');
    assert.match(err.message, /expands to \d+ YAML nodes by here once its aliases and merges are written out, past the limit of 100000; this looks like an alias bomb/, shape);
    // Conversion stops at the alias that passes the budget: one of the first 20 of the 99.
    const aliasesRead = text.split('\n').slice(0, err.position?.line).filter((line) => line.includes('*big')).length;
    assert.ok(aliasesRead > 0 && aliasesRead <= 20, `${shape}: stopped after ${aliasesRead} aliases`);
  }
});

test('more than 100 aliases of small anchors, as in Sentry\'s self-hosted compose file, are no alias bomb', () => {
  const services = Array.from({ length: 150 }, (_, i) => `  s${i}:\n    <<: *defaults\n    image: nginx\n`).join('');
  const { data } = parseCompose('f.yaml', `x-defaults: &defaults {restart: unless-stopped}\nservices:\n${services}`);
  assert.deepEqual((data as { services: Record<string, unknown> }).services['s149'], { restart: 'unless-stopped', image: 'nginx' });
});

test('duplicate keys name the key and its first line, in block and flow mappings', () => {
  const block = parseFailure('services:\n  web: {}\n  db: {}\n  web: {}\n', 'APP_YAML');
  assert.deepEqual(block.position, { line: 4, column: 3 });
  assert.match(block.message, /Map keys must be unique, and "web" is already a key of this mapping on line 2; remove or rename one/);
  assert.match(parseFailure('services: {web: {image: a, image: b}}\n', 'APP_YAML').message, /"image" is already a key/);
  // yaml's rule, kept: keys are compared as values (1 and "1" differ), and `<<` may repeat.
  assert.deepEqual(parseCompose('f.yaml', 'a: {1: x, "1": y}\nb: &b {p: 1}\nc: &c {q: 2}\nd:\n  <<: *b\n  <<: *c\n').data, {
    a: { 1: 'y' },
    b: { p: 1 },
    c: { q: 2 },
    d: { p: 1, q: 2 },
  });
});

test('nesting past 64 levels is refused by name, however deep', () => {
  for (const depth of [100, 5_000]) {
    const err = parseFailure(`services:\n  web:\n    image: nginx\n    labels: ${'['.repeat(depth)}${']'.repeat(depth)}\n`, 'APP_YAML');
    assert.match(err.message, /nests collections more than 64 levels deep, the limit for a compose file/, `depth ${depth}`);
  }
  assert.ok(parseCompose('f.yaml', `x: ${'['.repeat(60)}${']'.repeat(60)}\n`));
});
