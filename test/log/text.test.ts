import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatTextLine } from '../../src/log/text.ts';
import type { LogEntry } from '../../src/log/entry.ts';

const entry = (over: Partial<LogEntry>): LogEntry => ({ level: 'info', priority: 6, time: '2026-12-05T17:00:00.123Z', msg: '', fields: [], ...over });

test('issue 15: a decision reads as one sentence, with only the fields the sentence does not say', () => {
  const decision = entry({
    msg: 'hello: deploy 1a2b3c4d5e6f: new file',
    fields: [['APP', 'hello'], ['FILE', '/etc/dstack/apps.d/hello.yaml'], ['ACTION', 'deploy'], ['TO', '1a2b3c4d5e6f'], ['REASON', 'new file']],
  });
  assert.equal(formatTextLine(decision), '2026-12-05T17:00:00Z info  hello: deploy 1a2b3c4d5e6f: new file FILE=/etc/dstack/apps.d/hello.yaml');
});

test('levels line up in a column of five; values with spaces or quotes are quoted; newlines never split the line', () => {
  const lines = [
    formatTextLine(entry({ level: 'error', priority: 3, msg: 'it broke', fields: [['ERR_MESSAGE', 'disk "full"'], ['ERR_STACK', 'Error\n    at x']] })),
    formatTextLine(entry({ level: 'warn', priority: 4, msg: 'first\nsecond', fields: [['NEXT_RETRY', '2026-12-05T17:00:05.000Z'], ['NOTE', '']] })),
  ];
  assert.deepEqual(lines, [
    '2026-12-05T17:00:00Z error it broke ERR_MESSAGE="disk \\"full\\""',
    '2026-12-05T17:00:00Z warn  first\\nsecond NEXT_RETRY=2026-12-05T17:00:05.000Z',
  ]);
});
