import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDotenv, type EnvEntry } from '../../src/secrets/dotenv.ts';
import { SecretsError } from '../../src/secrets/errors.ts';

const FILE = 'apps.d/shop.env';

// [what it shows, file text, expected entries (sorted by key)]
const GOOD: ReadonlyArray<readonly [string, string, EnvEntry[]]> = [
  ['plain pair', 'A=1', [{ key: 'A', value: '1' }]],
  ['sorted by key', 'B=2\nA=1\n_C=3', [{ key: 'A', value: '1' }, { key: 'B', value: '2' }, { key: '_C', value: '3' }]],
  ['export prefix', 'export TOKEN=abc', [{ key: 'TOKEN', value: 'abc' }]],
  ['a key named export', 'export=1', [{ key: 'export', value: '1' }]],
  ['blank lines and comment lines', '\n# a comment\n   # indented comment\n\nA=1\n\n', [{ key: 'A', value: '1' }]],
  ['blanks around = and the value', '  A =  spaced value  ', [{ key: 'A', value: 'spaced value' }]],
  ['empty value', 'A=', [{ key: 'A', value: '' }]],
  ['empty quoted value', 'A=""\nB=\'\'', [{ key: 'A', value: '' }, { key: 'B', value: '' }]],
  ['= inside the value', 'A=b=c==', [{ key: 'A', value: 'b=c==' }]],
  ['inline comment after an unquoted value', 'A=value # note', [{ key: 'A', value: 'value' }]],
  ['# without a blank before it is part of the value', 'A=pa#ss', [{ key: 'A', value: 'pa#ss' }]],
  ['# right after = is part of the value', 'A=#hash', [{ key: 'A', value: '#hash' }]],
  ['a blank then # right after = is an empty value', 'A= #note', [{ key: 'A', value: '' }]],
  ['no shell expansion', 'A=$HOME ${USER} $(id) `id`', [{ key: 'A', value: '$HOME ${USER} $(id) `id`' }]],
  ['single quotes are literal', "A='a\\nb $X # not a comment'", [{ key: 'A', value: 'a\\nb $X # not a comment' }]],
  ['double-quote escapes', 'A="l1\\nl2\\tt\\r\\"q\\" back\\\\slash"', [{ key: 'A', value: 'l1\nl2\tt\r"q" back\\slash' }]],
  ['unknown escape kept as written', 'A="a\\$b\\x"', [{ key: 'A', value: 'a\\$b\\x' }]],
  ['# inside double quotes', 'A="x # y" # real comment', [{ key: 'A', value: 'x # y' }]],
  ['quotes inside an unquoted value', 'A=it\'s "fine"', [{ key: 'A', value: 'it\'s "fine"' }]],
  ['multi-line double-quoted value', 'KEY="-----BEGIN-----\nabc\n-----END-----"\nB=2', [{ key: 'B', value: '2' }, { key: 'KEY', value: '-----BEGIN-----\nabc\n-----END-----' }]],
  ['multi-line single-quoted value', "A='x\n# not a comment\ny'", [{ key: 'A', value: 'x\n# not a comment\ny' }]],
  ['CRLF line ends', 'A=1\r\nB="x"\r\n', [{ key: 'A', value: '1' }, { key: 'B', value: 'x' }]],
  ['UTF-8 BOM', '\uFEFFA=1', [{ key: 'A', value: '1' }]],
  ['unicode value', 'A=pässwörd 密码 🔑', [{ key: 'A', value: 'pässwörd 密码 🔑' }]],
  ['empty file', '', []],
];

for (const [what, text, expected] of GOOD) {
  test(`parseDotenv: ${what}`, () => {
    assert.deepEqual(parseDotenv(text, FILE), expected);
  });
}

// [what it shows, file text, line the error names, a fragment of the message]
const BAD: ReadonlyArray<readonly [string, string, number, string]> = [
  ['a line without =', 'A=1\nSECRETLINE', 2, 'KEY=value'],
  ['export without a pair', 'export SECRETLINE', 1, 'KEY=value'],
  ['a name starting with a digit', '1A=SECRETVALUE', 1, 'not a valid variable name'],
  ['a name with a dash', 'MY-KEY=SECRETVALUE', 1, 'not a valid variable name'],
  ['an empty name', '=SECRETVALUE', 1, 'not a valid variable name'],
  ['a duplicate key', 'A=1\n\nA=SECRETVALUE', 3, 'already set on line 1'],
  ['an unterminated double quote', 'A=1\nB="SECRETVALUE\nC=3', 2, 'never closed'],
  ['an unterminated single quote', "B='SECRETVALUE", 1, 'never closed'],
  ['text after the closing quote', 'A="SECRET"VALUE', 1, 'after its closing quote'],
  ['text after a multi-line closing quote', 'A="x\nSECRET"VALUE', 2, 'after its closing quote'],
];

for (const [what, text, line, fragment] of BAD) {
  test(`parseDotenv refuses ${what}, naming the line but not the value`, () => {
    assert.throws(
      () => parseDotenv(text, FILE),
      (err: unknown) => {
        assert.ok(err instanceof SecretsError);
        assert.equal(err.code, 'ENV_PARSE');
        assert.ok(err.message.startsWith(`${FILE}:${line}: `), err.message);
        assert.ok(err.message.includes(fragment), err.message);
        assert.ok(!err.message.includes('SECRET'), `message leaks the value: ${err.message}`);
        return true;
      },
    );
  });
}
