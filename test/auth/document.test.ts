import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyEdit, normalizeHexLikeDstackCli, parseAllowlist, serializeAllowlist } from '../../src/auth/document.ts';
import { AuthError } from '../../src/auth/errors.ts';

const FILE = '/etc/dstack/auth-config.json';

// A file an operator has edited: foreign top-level keys before and after `apps`, a foreign app,
// an entry with a key auth-simple does not know, and numbers spelled in ways JSON.stringify would not.
const OPERATOR_FILE = `{
  "comment": "managed by hand, do not touch",
  "chainId": 1.0,
  "osImages": ["AA11"],
  "apps": {
    "0xF00D": { "composeHashes": ["0xBEEF"], "devices": [], "allowAnyDevice": false, "owner": "ops" }
  },
  "kms": { "mrAggregated": [], "devices": [], "allowAnyDevice": true },
  "zzz": { "big": 12345678901234567890, "exp": 1e3, "list": [2.50, null, true] }
}
`;

function edited(text: string, ...edits: Parameters<typeof applyEdit>[1][]): { text: string; changed: boolean[] } {
  const doc = parseAllowlist(FILE, text);
  const changed = edits.map((e) => applyEdit(doc, e));
  return { text: serializeAllowlist(doc), changed };
}

test('adding an app keeps every other key, its order and its number spelling', () => {
  const { text, changed } = edited(OPERATOR_FILE, { kind: 'addHash', appId: 'abc', hash: 'dd' });
  assert.deepEqual(changed, [true]);
  const before = JSON.parse(OPERATOR_FILE);
  const after = JSON.parse(text);
  assert.deepEqual(Object.keys(after), Object.keys(before));
  assert.deepEqual(Object.keys(after.apps), ['0xF00D', 'abc']);
  assert.deepEqual(after.apps['0xF00D'], before.apps['0xF00D']);
  assert.deepEqual(after.apps.abc, { composeHashes: ['dd'], devices: [], allowAnyDevice: true });
  for (const key of ['comment', 'osImages', 'kms', 'zzz']) assert.deepEqual(after[key], before[key], key);
  assert.match(text, /"chainId": 1\.0,/);
  assert.match(text, /"big": 12345678901234567890,/);
  assert.match(text, /"exp": 1e3,/);
  assert.match(text, /2\.50,/);
});

test('output is 2-space pretty JSON with a trailing newline', () => {
  const { text } = edited('{"apps":{}}', { kind: 'addHash', appId: 'a1', hash: 'b2' });
  assert.equal(
    text,
    '{\n  "apps": {\n    "a1": {\n      "composeHashes": [\n        "b2"\n      ],\n      "devices": [],\n      "allowAnyDevice": true\n    }\n  }\n}\n',
  );
});

test('an existing key spelled differently is the same app to auth-simple, so it is reused', () => {
  const { text, changed } = edited(
    OPERATOR_FILE,
    { kind: 'addHash', appId: 'f00d', hash: 'beef' },
    { kind: 'addHash', appId: 'f00d', hash: 'cafe' },
  );
  assert.deepEqual(changed, [false, true]);
  const apps = JSON.parse(text).apps;
  assert.deepEqual(Object.keys(apps), ['0xF00D']);
  assert.deepEqual(apps['0xF00D'].composeHashes, ['0xBEEF', 'cafe']);
  assert.equal(apps['0xF00D'].owner, 'ops');
});

test('an entry without composeHashes gets one; auth-simple defaults it to []', () => {
  const { text } = edited('{"apps":{"aa":{"allowAnyDevice":false}}}', { kind: 'addHash', appId: 'aa', hash: 'bb' });
  assert.deepEqual(JSON.parse(text).apps.aa, { allowAnyDevice: false, composeHashes: ['bb'] });
});

test('removeHash drops every spelling of the hash and keeps the entry; removeApp drops the entry', () => {
  const start = '{"apps":{"aa":{"composeHashes":["0xBB","bb","cc"],"devices":[]},"dd":{"composeHashes":["bb"]}}}';
  const removeBb = { kind: 'removeHash', appId: 'aa', hash: 'bb' } as const;
  const removed = edited(start, removeBb, removeBb);
  assert.deepEqual(removed.changed, [true, false]);
  assert.deepEqual(JSON.parse(removed.text).apps, { aa: { composeHashes: ['cc'], devices: [] }, dd: { composeHashes: ['bb'] } });
  const dropped = edited(start, { kind: 'removeApp', appId: 'aa' }, { kind: 'removeApp', appId: 'ee' });
  assert.deepEqual(dropped.changed, [true, false]);
  assert.deepEqual(Object.keys(JSON.parse(dropped.text).apps), ['dd']);
});

test('normalizeHexLikeDstackCli trims, drops one 0x and lowercases, like upstream norm_hex', () => {
  const cases: Array<[string, string]> = [
    ['  0xABcd\n', 'abcd'],
    ['0XFF', 'ff'],
    ['0x0xaa', '0xaa'],
    ['abc', 'abc'],
  ];
  for (const [input, expected] of cases) assert.equal(normalizeHexLikeDstackCli(input), expected, JSON.stringify(input));
});

test('files auth-simple could not use, or without apps, are AUTH_INVALID naming the file', () => {
  const cases: Array<[string, RegExp]> = [
    ['', /not JSON/],
    ['{"apps": {}', /not JSON/],
    ['[]', /top level/],
    ['{}', /no `apps` object/],
    ['{"apps": []}', /no `apps` object/],
    ['{"apps": {"a": {"composeHashes": "ff"}}}', /apps\.a\.composeHashes/],
    ['{"apps": {}, "chainId": "1"}', /chainId/],
  ];
  for (const [text, problem] of cases) {
    assert.throws(
      () => parseAllowlist(FILE, text),
      (err: unknown) => {
        assert.ok(err instanceof AuthError);
        assert.equal(err.code, 'AUTH_INVALID');
        assert.ok(err.message.startsWith(`${FILE}: `), err.message);
        assert.match(err.message, problem);
        return true;
      },
      text,
    );
  }
});

test('a run of edits on one document finds keys it added and forgets keys it removed', () => {
  const doc = parseAllowlist('/x/auth-config.json', '{"apps":{"0xAB":{"composeHashes":["11"]},"ab":{"composeHashes":["22"]}}}');
  assert.equal(applyEdit(doc, { kind: 'addHash', appId: 'cd', hash: '33' }), true);
  assert.equal(applyEdit(doc, { kind: 'addHash', appId: 'cd', hash: '44' }), true);
  assert.deepEqual(doc.apps['cd'], { composeHashes: ['33', '44'], devices: [], allowAnyDevice: true });
  // Both spellings of ab are its entries: removal clears them all.
  assert.equal(applyEdit(doc, { kind: 'removeApp', appId: 'ab' }), true);
  assert.deepEqual(Object.keys(doc.apps), ['cd']);
  assert.equal(applyEdit(doc, { kind: 'removeApp', appId: 'ab' }), false);
  assert.equal(applyEdit(doc, { kind: 'addHash', appId: 'ab', hash: '55' }), true);
  assert.deepEqual(Object.keys(doc.apps), ['cd', 'ab']);
  assert.deepEqual(doc.apps['ab'], { composeHashes: ['55'], devices: [], allowAnyDevice: true });
});
