// The CLI as a child process whose reader goes away (issue 15: `status | head -1`).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';

const BIN = join(import.meta.dirname, '../../bin/dstack-supervisor.mjs');

export type Closed = { code: number | null; signal: NodeJS.Signals | null; stderr: string; read: number };

// Run the CLI with its stdout on a pipe that this side closes: at once (`afterBytes` 0, before the
// child can have written), or after the first `afterBytes` bytes, as `head -1` does.
export async function withClosedStdout(args: string[], afterBytes: number): Promise<Closed> {
  const env = { ...process.env };
  delete env['DSTACK_SUPERVISOR_CONFIG'];
  delete env['NOTIFY_SOCKET'];
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stderr = '';
  let read = 0;
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  if (afterBytes === 0) child.stdout.destroy();
  else {
    child.stdout.on('data', (chunk: Buffer) => {
      read += chunk.length;
      if (read >= afterBytes) child.stdout.destroy();
    });
  }
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  return { code, signal, stderr, read };
}
