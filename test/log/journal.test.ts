// Issue 15: under systemd each log call is one native journal entry, sent to a real AF_UNIX
// datagram socket and parsed as journald parses it (./journal-receiver.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { createLogger } from '../../src/log/logger.ts';
import { logDecision } from '../../src/log/decision.ts';
import { startJournalReceiver } from './journal-receiver.ts';

const loggerModule = fileURLToPath(new URL('../../src/log/logger.ts', import.meta.url));

// A stream that keeps every line written to it.
function lineStream() {
  const lines: string[] = [];
  return { lines, stream: { write: (line: string) => void lines.push(line) } };
}

test('issue 15: a decision is one entry: MESSAGE is the sentence, PRIORITY its level, APP, FILE, ACTION … native fields', async (t) => {
  const journal = await startJournalReceiver(t);
  const { lines, stream } = lineStream();
  const log = createLogger({ level: 'debug', format: 'journal', stream, journalSocket: journal.path });
  logDecision(log, { app: 'shop', file: '/etc/dstack/apps.d/shop.yaml', action: 'upgrade', from: 'a'.repeat(64), to: 'b'.repeat(64), reason: 'content changed' });
  log.warn({ VM: 'vm-1', PHASE: 'failed', REPEATED: 3, FROM_PHASE: null }, 'shop: running -> failed');
  assert.deepEqual((await journal.next()).fields, [
    ['MESSAGE', 'shop: upgrade aaaaaaaaaaaa -> bbbbbbbbbbbb: content changed'],
    ['PRIORITY', '6'],
    ['SYSLOG_IDENTIFIER', 'dstack-supervisor'],
    ['APP', 'shop'],
    ['FILE', '/etc/dstack/apps.d/shop.yaml'],
    ['ACTION', 'upgrade'],
    ['FROM', 'aaaaaaaaaaaa'],
    ['TO', 'bbbbbbbbbbbb'],
    ['REASON', 'content changed'],
  ]);
  // Numbers as written; a null is no field at all.
  assert.deepEqual((await journal.next()).fields.slice(1), [
    ['PRIORITY', '4'],
    ['SYSLOG_IDENTIFIER', 'dstack-supervisor'],
    ['VM', 'vm-1'],
    ['PHASE', 'failed'],
    ['REPEATED', '3'],
  ]);
  assert.deepEqual(lines, [], 'nothing went to stdout');
});

test('issue 15: a value with a newline is sent in the binary form; an error becomes ERR_* fields', async (t) => {
  const journal = await startJournalReceiver(t);
  const log = createLogger({ level: 'info', format: 'journal', journalSocket: journal.path });
  const err = Object.assign(new Error('disk full'), { code: 'ENOSPC' });
  log.error({ err, APP: 'shop' }, 'shop: cannot write its state\nthe disk is full');
  const { raw, fields } = await journal.next();
  const message = 'shop: cannot write its state\nthe disk is full';
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(Buffer.byteLength(message)));
  const binary = Buffer.concat([Buffer.from('MESSAGE\n'), size, Buffer.from(`${message}\n`)]);
  assert.ok(raw.subarray(0, binary.length).equals(binary), raw.toString());
  const byName = new Map(fields);
  assert.equal(byName.get('MESSAGE'), message);
  assert.equal(byName.get('PRIORITY'), '3');
  assert.equal(byName.get('ERR_TYPE'), 'Error');
  assert.equal(byName.get('ERR_MESSAGE'), 'disk full');
  assert.equal(byName.get('ERR_CODE'), 'ENOSPC');
  assert.match(byName.get('ERR_STACK') ?? '', /^Error: disk full\n {4}at /);
  assert.equal(byName.get('APP'), 'shop');
});

test('issue 15: secret values never reach the datagram, at the top level or one level down', async (t) => {
  const journal = await startJournalReceiver(t);
  const log = createLogger({ level: 'info', format: 'journal', journalSocket: journal.path });
  log.info({ token: 'hunter1', env: { DB_PASSWORD: 'hunter2' }, app: { name: 'shop', env_values: { KEY: 'hunter3' }, secret: 'hunter4' } }, 'deploying');
  log.info({ authorization: 'Bearer hunter5', encrypted_env: 'hunter6' }, 'calling the vmm');
  const entries = [await journal.next(), await journal.next()];
  const raw = Buffer.concat(entries.map((e) => e.raw)).toString();
  for (const secret of ['hunter1', 'hunter2', 'hunter3', 'hunter4', 'hunter5', 'hunter6']) assert.ok(!raw.includes(secret), `${secret} leaked: ${raw}`);
  assert.deepEqual(entries[0]!.fields.slice(3), [
    ['TOKEN', '[redacted]'],
    ['ENV', '[redacted]'],
    ['APP_NAME', 'shop'],
    ['APP_ENV_VALUES', '[redacted]'],
    ['APP_SECRET', '[redacted]'],
  ]);
});

test('issue 15: with no journald listening, each entry is a <N> line on stdout with its fields', () => {
  const { lines, stream } = lineStream();
  const log = createLogger({ level: 'info', format: 'journal', stream, journalSocket: '/nonexistent/journal/socket' });
  log.warn({ APP: 'shop', FILE: '/etc/dstack/apps.d/shop.yaml' }, 'shop: port 8080 is taken');
  log.info('line one\nline two');
  assert.deepEqual(lines, ['<4>shop: port 8080 is taken FILE=/etc/dstack/apps.d/shop.yaml\n', '<6>line one\\nline two\n']);
});

test('issue 15: when journald\'s queue is full the entries that do not fit go to stdout, each entry exactly once, without blocking', async (t) => {
  const journal = await startJournalReceiver(t, { paused: true });
  const { lines, stream } = lineStream();
  const log = createLogger({ level: 'info', format: 'journal', stream, journalSocket: journal.path });
  // The kernel queues max_dgram_qlen + 1 datagrams for a receiver that does not read (10 here,
  // 512 once systemd raised it); the rest must fall back.
  const total = Number(readFileSync('/proc/sys/net/unix/max_dgram_qlen', 'utf8')) + 20;
  const started = performance.now();
  for (let i = 0; i < total; i++) log.info({ N: i }, `entry ${i}`);
  assert.ok(performance.now() - started < 2_000, 'logging never waited for the receiver');
  const fallen = lines.map((line) => /^<6>entry (\d+)\n$/.exec(line)?.[1]).map(Number);
  assert.ok(fallen.length > 0 && fallen.length < total, `${fallen.length} of ${total} entries fell back`);
  journal.receiver.drain();
  const sent: number[] = [];
  while (sent.length + fallen.length < total) sent.push(Number(new Map((await journal.next()).fields).get('N')));
  // Anything still queued inside the addon would arrive before an entry logged now.
  await new Promise((resolve) => setImmediate(resolve));
  log.info('after');
  assert.equal(new Map((await journal.next()).fields).get('MESSAGE'), 'after');
  assert.deepEqual([...sent, ...fallen].sort((a, b) => a - b), Array.from({ length: total }, (_, i) => i));
});

test('issue 15: a process that logged to the journal exits by itself (the socket does not hold the event loop)', async (t) => {
  const journal = await startJournalReceiver(t);
  const script = `
    const { createLogger } = await import(${JSON.stringify(loggerModule)});
    createLogger({ level: 'info', format: 'journal', journalSocket: ${JSON.stringify(journal.path)} }).info({ APP: 'shop' }, 'hello');`;
  const result = await execa(process.execPath, ['--input-type=module', '-e', script], { timeout: 10_000, reject: false });
  assert.equal(result.timedOut, false, 'the process did not exit');
  assert.equal(result.exitCode, 0, result.stderr);
  assert.deepEqual((await journal.next()).fields.at(-1), ['APP', 'shop']);
});
