import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseLogLine } from '../../src/log/entry.ts';

test('keys become journal field names: upper case, camelCase split, no leading _ or digit, at most 64', () => {
  const table: Array<[string, string | undefined]> = [
    ['APP', 'APP'],
    ['vmId', 'VM_ID'],
    ['FILES_WRITTEN', 'FILES_WRITTEN'],
    ['env_values', 'ENV_VALUES'],
    ['x-dstack.port', 'X_DSTACK_PORT'],
    ['_private', 'PRIVATE'],
    ['2fa', 'FA'],
    ['IPV4ADDR', 'IPV4ADDR'],
    ['a'.repeat(70), 'A'.repeat(64)],
    ['__', undefined],
  ];
  for (const [key, name] of table) {
    const { fields } = parseLogLine(JSON.stringify({ level: 'info', time: 't', [key]: 'v', msg: 'm' }));
    assert.deepEqual(fields, name === undefined ? [] : [[name, 'v']], key);
  }
});

test('a pino line reads back as level, priority, time, sentence and text fields in logged order', () => {
  const line = JSON.stringify({
    level: 'warn',
    time: '2026-12-05T17:00:00.123Z',
    APP: 'shop',
    REPEATED: 2,
    ok: true,
    none: null,
    list: [1, 'two'],
    err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at x', code: 'EIO' },
    deep: { a: { b: 1 } },
    msg: 'shop: it broke',
  });
  assert.deepEqual(parseLogLine(line), {
    level: 'warn',
    priority: 4,
    time: '2026-12-05T17:00:00.123Z',
    msg: 'shop: it broke',
    fields: [
      ['APP', 'shop'],
      ['REPEATED', '2'],
      ['OK', 'true'],
      ['LIST', '[1,"two"]'],
      ['ERR_TYPE', 'Error'],
      ['ERR_MESSAGE', 'boom'],
      ['ERR_STACK', 'Error: boom\n    at x'],
      ['ERR_CODE', 'EIO'],
      ['DEEP_A', '{"b":1}'],
    ],
  });
});
