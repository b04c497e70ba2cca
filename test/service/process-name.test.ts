// Issue 15: `systemctl status` showed `Main PID: 400 (MainThread)`; the service names itself,
// and keeps its command line (the Node flags the launcher passed stay visible).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { execa } from 'execa';

const MODULE = join(import.meta.dirname, '../../src/service/process-name.ts');

test('issue 15: nameProcess sets the name ps shows and leaves the command line alone', { timeout: 30_000 }, async () => {
  const script = `
    import { readFileSync } from 'node:fs';
    const { nameProcess } = await import(${JSON.stringify(MODULE)});
    const before = readFileSync('/proc/self/cmdline', 'utf8');
    nameProcess();
    console.log(JSON.stringify({ comm: readFileSync('/proc/self/comm', 'utf8').trim(), same: readFileSync('/proc/self/cmdline', 'utf8') === before }));
  `;
  const { stdout } = await execa(process.execPath, ['--input-type=module', '-e', script]);
  assert.deepEqual(JSON.parse(stdout), { comm: 'dstack-supervis', same: true });
});
