import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { createLogger } from '../../src/log/logger.ts';
import { collectLines } from './collect.ts';

const loggerModule = fileURLToPath(new URL('../../src/log/logger.ts', import.meta.url));

test('every line carries the journald priority of its level', () => {
  const { stream, lines } = collectLines();
  const log = createLogger({ level: 'debug', stream });
  log.trace('dropped below the level');
  log.debug('d');
  log.info('i');
  log.warn('w');
  log.error('e');
  log.fatal('f');
  assert.deepEqual(
    lines.map((l) => [l.priority, l.fields.level, l.fields.msg]),
    [
      [7, 'debug', 'd'],
      [6, 'info', 'i'],
      [4, 'warn', 'w'],
      [3, 'error', 'e'],
      [2, 'fatal', 'f'],
    ],
  );
});

test('child loggers keep the prefix and their bound fields', () => {
  const { stream, lines } = collectLines();
  createLogger({ level: 'info', stream }).child({ APP: 'shop' }).warn('careful');
  assert.equal(lines[0]?.priority, 4);
  assert.equal(lines[0]?.fields.APP, 'shop');
});

test('secret values never reach the log, at the top level or one level down', () => {
  const chunks: string[] = [];
  const log = createLogger({ level: 'info', stream: { write: (s) => chunks.push(s) } });
  log.info({ env: { DB_PASSWORD: 'hunter2' }, app: { name: 'shop', env_values: { KEY: 'hunter3' }, token: 'hunter4' } }, 'deploying');
  log.info({ encrypted_env: 'abcd1234', authorization: 'Bearer hunter5', password: 'hunter6' }, 'calling the vmm');
  const text = chunks.join('');
  for (const secret of ['hunter2', 'hunter3', 'hunter4', 'abcd1234', 'hunter5', 'hunter6']) {
    assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);
  }
  assert.match(text, /"name":"shop"/);
  assert.match(text, /"env":"\[redacted\]"/);
});

test('a real process logs prefixed JSON lines on its stdout by default', async () => {
  const script = `
    const { createLogger } = await import(${JSON.stringify(loggerModule)});
    const log = createLogger({ level: 'info' });
    log.info({ APP: 'shop' }, 'hello');
    log.error('broken');`;
  const { stdout } = await execa(process.execPath, ['--input-type=module', '-e', script]);
  const lines = stdout.split('\n');
  assert.equal(lines.length, 2);
  assert.match(lines[0]!, /^<6>\{"level":"info",.*"APP":"shop","msg":"hello"\}$/);
  assert.match(lines[1]!, /^<3>\{"level":"error",.*"msg":"broken"\}$/);
});
