// Acceptance: two processes register 200 apps each while a third reads the file 10 000 times.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defer } from '../helpers/cleanup.ts';

const HERE = import.meta.dirname;
const PER_WRITER = 200;

const INITIAL = {
  comment: 'operator notes',
  osImages: ['aa11'],
  apps: { cafe: { composeHashes: ['beef'], devices: ['d1'], allowAnyDevice: false, owner: 'ops' } },
  'x-operator': { note: 'keep me' },
  allowedTcbStatuses: ['UpToDate', 'OutOfDate'],
};

type Child = { child: ChildProcess; printed: (line: string) => Promise<void>; output: Promise<string> };

// Run one of the child scripts beside this file; `printed` resolves when it prints `line`.
function run(script: string, args: string[]): Child {
  const child = spawn(process.execPath, [join(HERE, script), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let text = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  const exited = once(child, 'exit') as Promise<[number | null]>;
  const output = exited.then(([code]) => {
    assert.equal(code, 0, `${script} exited with ${code}`);
    return text;
  });
  const printed = (line: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (!text.split('\n').includes(line)) return;
        child.stdout!.off('data', check);
        child.off('exit', early);
        resolve();
      };
      const early = (): void => reject(new Error(`${script} exited before printing ${line}`));
      child.stdout!.on('data', check);
      child.once('exit', early);
      check();
    });
  return { child, printed, output };
}

function lastJsonLine(text: string): Record<string, unknown> {
  return JSON.parse(text.trim().split('\n').at(-1) ?? '') as Record<string, unknown>;
}

test('two writers x 200 apps with a reader x 10 000: nothing lost, every read valid', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'auth-concurrency-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'auth-config.json');
  await writeFile(path, `${JSON.stringify(INITIAL, null, 2)}\n`);

  const writers = ['a', 'b'].map((prefix) => run('register-many.ts', [path, prefix, String(PER_WRITER)]));
  defer(t, () => writers.forEach((w) => w.child.kill()));
  // Start reading once both writers are mid-fight, so the reads overlap the writes.
  await Promise.all(writers.map((w) => w.printed('registering')));
  const reader = run('read-many.ts', [path, '10000']);
  defer(t, () => reader.child.kill());

  const [readReport, ...writerOutputs] = await Promise.all([reader.output, ...writers.map((w) => w.output)]);
  const reads = lastJsonLine(readReport);
  assert.equal(reads['reads'], 10_000);
  assert.equal(reads['invalid'], 0, String(reads['firstError']));
  assert.equal(reads['foreignLost'], 0);
  assert.ok(Number(reads['appCounts']) > 1, 'the reader saw the file change, so it really ran during the writes');
  for (const out of writerOutputs) assert.equal(lastJsonLine(out)['writes'], PER_WRITER);

  const final = JSON.parse(await readFile(path, 'utf8')) as typeof INITIAL & { apps: Record<string, unknown> };
  assert.deepEqual(Object.keys(final), Object.keys(INITIAL));
  for (const key of ['comment', 'osImages', 'x-operator', 'allowedTcbStatuses'] as const) assert.deepEqual(final[key], INITIAL[key]);
  assert.deepEqual(final.apps['cafe'], INITIAL.apps.cafe);
  assert.equal(Object.keys(final.apps).length, 1 + 2 * PER_WRITER);
  for (const prefix of ['a', 'b']) {
    for (let i = 0; i < PER_WRITER; i++) {
      const n = i.toString(16);
      const entry = final.apps[`${prefix}${n.padStart(39, '0')}`];
      assert.deepEqual(entry, { composeHashes: [n.padStart(64, 'f')], devices: [], allowAnyDevice: true }, `${prefix} #${i}`);
    }
  }
});
