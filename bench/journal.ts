// What one log call costs in each format (issue 15), as CPU time of this process per line: pino,
// then the text line, the JSON line, or the native journal entry sent to a real AF_UNIX datagram
// socket (python3 reads it, as journald would). The journal is measured both ways the loop sees
// it: several entries in one turn (one socket for them) and one entry per turn (a socket opened
// and closed for each). Between turns the bench waits 1 ms, so the receiver keeps up and the
// figures are of sends, not of the fallback. Beside them, the alternative that needs no addon:
// spawning `logger --journald` per entry (util-linux, as Debian ships it), in wall time; its
// send fails where no journald listens, the cost is the spawn.
// Run: node_modules/.bin/node bench/journal.ts [--lines 5000] [--spawns 50]
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { createLogger, type Logger } from '../src/log/logger.ts';
import { logDecision } from '../src/log/decision.ts';
import { describeMachine, numberArgs, printResult } from './report.ts';

const args = numberArgs({ lines: 5000, spawns: 50 });
// Entries per turn of the loop in the burst case: no more than the receiver's queue holds
// (net.unix.max_dgram_qlen: 512 where systemd raised it, the kernel's 10 elsewhere).
const BURST = Math.min(100, Number(readFileSync('/proc/sys/net/unix/max_dgram_qlen', 'utf8')));

// journald's part: read every datagram on another thread, as fast as it comes, and say how
// many when stdin closes. Nothing per datagram comes back to this process, so the figures
// are the sender's alone.
const RECEIVER = `
import socket, sys, threading
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(sys.argv[1])
count = 0
def read():
    global count
    while True:
        sock.recv(1 << 20)
        count += 1
threading.Thread(target=read, daemon=True).start()
print('listening', flush=True)
sys.stdin.read()
print(count, flush=True)
`;

type Receiver = ChildProcessByStdio<Writable, Readable, null>;

async function startReceiver(path: string): Promise<Receiver> {
  const child = spawn('python3', ['-c', RECEIVER, path], { stdio: ['pipe', 'pipe', 'inherit'] });
  await once(child.stdout, 'data');
  return child;
}

// How many datagrams the receiver took, once it has read what was sent.
async function received(receiver: Receiver): Promise<number> {
  let out = '';
  receiver.stdout.on('data', (c: Buffer) => (out += c.toString()));
  receiver.stdin.end();
  await once(receiver, 'exit');
  return Number(out.trim());
}

// One decision line, as the supervisor logs most: five fields and a sentence.
function logOne(log: Logger, i: number): void {
  logDecision(log, { app: `app-${i % 100}`, file: `/etc/dstack/apps.d/app-${i % 100}.yaml`, action: 'deploy', to: 'ab'.repeat(32), reason: 'new file' });
}

// CPU µs per line over `lines` calls, `perTurn` of them in each turn of the event loop, after a
// warm-up of as many.
async function usPerLine(log: Logger, perTurn: number): Promise<number> {
  const lines = async () => {
    for (let i = 0; i < args.lines; i++) {
      logOne(log, i);
      if ((i + 1) % perTurn === 0) await delay(1);
    }
    await delay(1);
  };
  await lines();
  const before = process.cpuUsage();
  await lines();
  const used = process.cpuUsage(before);
  return Math.round(((used.user + used.system) / args.lines) * 10) / 10;
}

// Milliseconds per entry spawning `logger --journald`, which reads the entry on stdin.
async function spawnMsPerLine(): Promise<number> {
  const started = process.hrtime.bigint();
  for (let i = 0; i < args.spawns; i++) {
    await new Promise<void>((resolve, reject) => {
      const child = spawn('logger', ['--journald'], { stdio: ['pipe', 'ignore', 'ignore'] });
      child.once('error', reject);
      child.once('exit', () => resolve());
      child.stdin.end(`MESSAGE=app-${i}: deploy abababababab: new file\nPRIORITY=6\nAPP=app-${i}\n`);
    });
  }
  return Math.round(Number((process.hrtime.bigint() - started) / BigInt(args.spawns)) / 1e5) / 10;
}

// The journal format with `perTurn` entries per turn: µs per line, how many the receiver got and
// how many fell back to the stream (its queue full), of the measured lines and the warm-up.
async function journalRun(dir: string, perTurn: number): Promise<{ usPerLine: number; received: number; fellBack: number }> {
  const socket = join(dir, `journal-${perTurn}.socket`);
  const receiver = await startReceiver(socket);
  let fellBack = 0;
  const log = createLogger({ level: 'info', format: 'journal', stream: { write: () => (fellBack += 1) }, journalSocket: socket });
  const us = await usPerLine(log, perTurn);
  return { usPerLine: us, received: await received(receiver), fellBack };
}

const machine = describeMachine();
const dir = await mkdtemp(join(tmpdir(), 'bench-journal-'));
try {
  const nowhere = { write: () => true };
  printResult('journal', machine, {
    lines: args.lines,
    burst: BURST,
    usPerLine: {
      text: await usPerLine(createLogger({ level: 'info', format: 'text', stream: nowhere }), BURST),
      json: await usPerLine(createLogger({ level: 'info', format: 'json', stream: nowhere }), BURST),
      // What a turn of the loop itself costs a line, to set beside journalOnePerTurn.
      textOnePerTurn: await usPerLine(createLogger({ level: 'info', format: 'text', stream: nowhere }), 1),
    },
    journalBurst: await journalRun(dir, BURST),
    journalOnePerTurn: await journalRun(dir, 1),
    spawnLoggerMsPerLine: await spawnMsPerLine(),
  });
} finally {
  await rm(dir, { recursive: true, force: true });
}
