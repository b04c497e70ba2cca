// Carry out one soak op for real: files are written with the syscall sequences the named tools
// use, faults go to the simulator, kills to the supervisor's process. An op on a file that is
// not there (a shrunk op list may drop the op that made it) does nothing.
import { chmod, chown, mkdir, open, readFile, rename, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { composeText } from '../helpers/harness.ts';
import type { Content, Op, Writer } from './ops.ts';
import type { Stage } from './stage.ts';

// What apply needs from the runner.
export type ApplyContext = {
  stage: Stage;
  // Port slot → real free port of this stage.
  ports: readonly number[];
  // Kill the supervisor with `signal` and start it again (the runner owns the process).
  restart(signal: 'SIGKILL' | 'SIGTERM'): Promise<void>;
  // Told the text a file of identity `name` now holds, so the oracle knows what once ran there.
  wrote(name: string, text: string): void;
};

const TWO_MIB = 2 * 1024 * 1024;

// The text of a write.
export function textOf(content: Content, version: number, port: number): string {
  const marker = `# soak v${version}\n`;
  switch (content) {
    case 'valid':
      return composeText(port, `soak v${version}`);
    case 'invalid-yaml':
      return `${marker}services: [web\n  image: "nginx\n`;
    case 'empty':
      return '';
    case 'schema':
      return `${marker}services: 42\n`;
    case 'not-compose':
      return `${marker}hello: world\n`;
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// Create `path` holding `text` the way a tool creates its temp file (root, 0644 under umask 022).
async function createFile(path: string, text: string): Promise<void> {
  await writeFile(path, text, { mode: 0o644 });
}

// Replace `file` in `dir` with `text` as `writer` does.
async function writeAs(writer: Writer, dir: string, file: string, text: string): Promise<void> {
  const path = join(dir, file);
  const viaTemp = async (temp: string) => {
    await createFile(join(dir, temp), text);
    await rename(join(dir, temp), path);
  };
  switch (writer) {
    case 'inplace':
      return writeFile(path, text);
    case 'chunked': {
      // Three writes 10 ms apart, well inside the settle window.
      const handle = await open(path, 'w', 0o644);
      try {
        const third = Math.ceil(text.length / 3);
        for (let i = 0; i < 3; i++) {
          if (i > 0) await sleep(10);
          await handle.write(text.slice(i * third, (i + 1) * third));
        }
      } finally {
        await handle.close();
      }
      return;
    }
    case 'mv':
      return viaTemp(`.${file}.tmp`);
    case 'vim': {
      // :w with backupcopy=auto: swap file open meanwhile, probe 4913, original renamed to file~,
      // a new file written (mode kept), the backup dropped, then the swap file.
      const swap = join(dir, `.${file}.swp`);
      await createFile(swap, 'b0VIM 9.0');
      const mode = (await stat(path).catch(() => undefined))?.mode;
      await createFile(join(dir, '4913'), '');
      await unlink(join(dir, '4913'));
      if (mode !== undefined) await rename(path, `${path}~`);
      const handle = await open(path, 'wx', 0o644);
      try {
        await handle.writeFile(text);
        await handle.sync();
        if (mode !== undefined) await handle.chmod(mode & 0o7777);
      } finally {
        await handle.close();
      }
      await rm(`${path}~`, { force: true });
      await unlink(swap);
      return;
    }
    case 'sed': {
      // GNU sed -i: sedXXXXXX beside the file, mode and owner copied, renamed over.
      const temp = join(dir, 'sedAbC123');
      const before = await stat(path).catch(() => undefined);
      await createFile(temp, text);
      if (before) {
        await chmod(temp, before.mode & 0o7777);
        await chown(temp, before.uid, before.gid);
      }
      await rename(temp, path);
      return;
    }
    case 'ansible':
      return viaTemp(`.ansible_tmpk3j9x2${file}`);
    case 'puppet':
      return viaTemp(`${file}20261020-4242-1ab2cd`);
    case 'salt':
      return viaTemp(`${file}k3j9x2`);
    case 'dpkg':
      return viaTemp(`${file}.dpkg-new`);
  }
}

async function applyJunk(dir: string, file: string, create: boolean): Promise<void> {
  const path = join(dir, file);
  if (!create) return rm(path, { recursive: true, force: true });
  if (file === 'sub.yml') return mkdir(path, { recursive: true }).then(() => undefined);
  const text = composeText(1, `junk ${file}`);
  return createFile(path, file === 'big.yml' ? text + '#'.repeat(TWO_MIB) : text);
}

// Run one op (not `check`: the runner does that).
export async function applyOp(op: Op, ctx: ApplyContext): Promise<void> {
  const { stage } = ctx;
  const dir = stage.appsDir;
  const identity = (file: string) => file.replace(/\.ya?ml$/, '');
  switch (op.kind) {
    case 'write': {
      const text = textOf(op.content, op.version, ctx.ports[op.slot] as number);
      await writeAs(op.writer, dir, op.file, text);
      ctx.wrote(identity(op.file), text);
      return;
    }
    case 'rewrite': {
      const text = await readFile(join(dir, op.file), 'utf8').catch(() => undefined);
      if (text !== undefined) await writeAs(op.writer, dir, op.file, text);
      return;
    }
    case 'touch': {
      const now = new Date();
      return utimes(join(dir, op.file), now, now).catch(() => undefined);
    }
    case 'chmod':
      return chmod(join(dir, op.file), op.mode).catch(() => undefined);
    case 'chown':
      return chown(join(dir, op.file), op.uid, op.uid).catch(() => undefined);
    case 'delete':
      return rm(join(dir, op.file), { force: true });
    case 'rename': {
      if (!(await exists(join(dir, op.from))) || (await exists(join(dir, op.to)))) return;
      await rename(join(dir, op.from), join(dir, op.to));
      const text = await readFile(join(dir, op.to), 'utf8').catch(() => undefined);
      if (text !== undefined) ctx.wrote(identity(op.to), text);
      return;
    }
    case 'junk':
      return applyJunk(dir, op.file, op.create);
    case 'fail':
      return stage.sim.faults.failNext(op.method, { count: op.count, afterApply: op.afterApply });
    case 'latency':
      return stage.sim.faults.setLatency(op.ms);
    case 'crash-vm': {
      const running = stage.sim.state.list().filter((v) => v.status === 'running');
      const vm = running[op.pick % Math.max(1, running.length)];
      if (vm) stage.sim.faults.crashVm(vm.id);
      return;
    }
    case 'restart-vmm':
      return stage.sim.faults.restartVmm({ downtimeMs: op.downtimeMs });
    case 'kill':
      return ctx.restart(op.signal);
    case 'pause':
      return sleep(op.ms);
    case 'check':
      return;
  }
}
