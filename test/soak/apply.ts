// Carry out one soak op for real: files are written with the syscall sequences the named tools
// use, faults go to the simulator, kills to the supervisor's process, hand edits to the state
// files. An op on a file that is not there (a shrunk op list may drop the op that made it) does
// nothing. Every op reports the apps it touched, for the call-log invariants.
import { chmod, chown, link, lstat, mkdir, open, readFile, rename, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { composeText } from '../helpers/harness.ts';
import { editAuthConfig, editRecord } from './apply-state.ts';
import type { Reason } from './calls.ts';
import { envText, identityOf, type Content, type Op, type Writer } from './ops.ts';
import { refusalOf } from './oracle.ts';
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
  // Told the keys NAME.env now sets.
  wroteEnv(name: string, keys: readonly string[]): void;
  // Told that an op did `reason` to app `name` (what may justify VMM calls for it).
  touched(name: string, reason: Reason): void;
  // Told the VMM was restarted.
  vmmRestarted(): void;
  // Told what a hand edit left under a foreign app id in auth-config.json (undefined: removed).
  foreign(id: string, entry: unknown): void;
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

// Whether a compose candidate at `path` is refused by its metadata now (undefined: no file).
async function refusedNow(path: string): Promise<boolean | undefined> {
  const st = await lstat(path).catch(() => undefined);
  return st && refusalOf(st, process.getuid?.() ?? 0) !== undefined;
}

// Run `change` on `file`; an app it turns from refused to acceptable or back counts as touched.
async function metadataChange(ctx: ApplyContext, file: string, change: () => Promise<unknown>): Promise<void> {
  const path = join(ctx.stage.appsDir, file);
  const before = await refusedNow(path);
  await change().catch(() => undefined);
  if ((await refusedNow(path)) !== before) ctx.touched(identityOf(file), 'file');
}

// NAME.env replaced in one step with exactly `mode`, as `install -m MODE` leaves it.
async function writeEnv(dir: string, name: string, text: string, mode: number): Promise<void> {
  const temp = join(dir, `.${name}.env.soak-tmp`);
  await writeFile(temp, text, { mode });
  await chmod(temp, mode);
  await rename(temp, join(dir, `${name}.env`));
}

// A hard link in apps.d to a root-only compose file outside it (a file the app file's owner could
// not otherwise have placed there).
async function linkOutside(ctx: ApplyContext, file: string, text: string): Promise<void> {
  const target = join(ctx.stage.dir, 'outside', `${file}.${Date.now()}`);
  if (await refusedNow(join(ctx.stage.appsDir, file)) !== undefined) return;
  await mkdir(join(ctx.stage.dir, 'outside'), { recursive: true, mode: 0o700 });
  await writeFile(target, text, { mode: 0o600 });
  await link(target, join(ctx.stage.appsDir, file));
  ctx.touched(identityOf(file), 'file');
}

// Run one file or env op in apps.d.
async function applyDirOp(op: Extract<Op, { file: string } | { from: string } | { name: string }>, ctx: ApplyContext): Promise<void> {
  const dir = ctx.stage.appsDir;
  switch (op.kind) {
    case 'write': {
      const text = textOf(op.content, op.version, ctx.ports[op.slot] as number);
      await writeAs(op.writer, dir, op.file, text);
      ctx.wrote(identityOf(op.file), text);
      ctx.touched(identityOf(op.file), 'file');
      return;
    }
    case 'rewrite': {
      const text = await readFile(join(dir, op.file), 'utf8').catch(() => undefined);
      if (text === undefined) return;
      // Same bytes, but a replacing tool makes a new file (0644, root): maybe no longer refused.
      await metadataChange(ctx, op.file, () => writeAs(op.writer, dir, op.file, text));
      ctx.wrote(identityOf(op.file), text);
      return;
    }
    case 'touch': {
      const now = new Date();
      return utimes(join(dir, op.file), now, now).catch(() => undefined);
    }
    case 'chmod':
      return metadataChange(ctx, op.file, () => chmod(join(dir, op.file), op.mode));
    case 'chown':
      return metadataChange(ctx, op.file, () => chown(join(dir, op.file), op.uid, op.uid));
    case 'delete':
      if ((await refusedNow(join(dir, op.file))) === undefined) return;
      await rm(join(dir, op.file), { force: true });
      ctx.touched(identityOf(op.file), 'file');
      ctx.touched(identityOf(op.file), 'end');
      return;
    case 'rename': {
      if (!(await exists(join(dir, op.from))) || (await exists(join(dir, op.to)))) return;
      await rename(join(dir, op.from), join(dir, op.to));
      ctx.touched(identityOf(op.from), 'end');
      ctx.touched(identityOf(op.to), 'file');
      const text = await readFile(join(dir, op.to), 'utf8').catch(() => undefined);
      if (text !== undefined) ctx.wrote(identityOf(op.to), text);
      return;
    }
    case 'junk':
      return applyJunk(dir, op.file, op.create);
    case 'link':
      return linkOutside(ctx, op.file, textOf('valid', op.version, ctx.ports[op.slot] as number));
    case 'env':
      await writeEnv(dir, op.name, envText(op.keys, op.version), op.mode);
      ctx.wroteEnv(op.name, op.keys);
      ctx.touched(op.name, 'env');
      return;
    case 'env-chmod':
      await chmod(join(dir, `${op.name}.env`), op.mode).catch(() => undefined);
      ctx.touched(op.name, 'env');
      return;
    case 'env-delete':
      await rm(join(dir, `${op.name}.env`), { force: true });
      ctx.touched(op.name, 'env');
      return;
    case 'record': {
      if (!(await editRecord(ctx.stage.stateDir, op.name, op.edit))) return;
      ctx.touched(op.name, 'record');
      // A record moved aside while the app's file is gone lets the delete the held record stopped
      // go ahead now: a teardown, after which a new file of that name is a new app (seed 17202).
      const present = await Promise.all([`${op.name}.yml`, `${op.name}.yaml`].map((f) => lstat(join(dir, f)).then(() => true, () => false)));
      if (op.edit === 'move-aside' && !present.includes(true)) ctx.touched(op.name, 'end');
      return;
    }
  }
}

// Run one op (not `check`: the runner does that).
export async function applyOp(op: Op, ctx: ApplyContext): Promise<void> {
  const { stage } = ctx;
  switch (op.kind) {
    case 'auth': {
      const result = await editAuthConfig(stage.authPath, op.edit, op.pick, stage.sim.state.list());
      for (const name of result.touched) ctx.touched(name, 'auth');
      for (const [id, entry] of result.foreign) ctx.foreign(id, entry);
      return;
    }
    case 'fail':
      return stage.sim.faults.failNext(op.method, { count: op.count, afterApply: op.afterApply });
    case 'latency':
      return stage.sim.faults.setLatency(op.ms);
    case 'crash-vm': {
      const running = stage.sim.state.list().filter((v) => v.status === 'running');
      const vm = running[op.pick % Math.max(1, running.length)];
      if (!vm) return;
      stage.sim.faults.crashVm(vm.id);
      ctx.touched(vm.name, 'crash');
      return;
    }
    case 'restart-vmm':
      ctx.vmmRestarted();
      return stage.sim.faults.restartVmm({ downtimeMs: op.downtimeMs });
    case 'kill':
      return ctx.restart(op.signal);
    case 'pause':
      return sleep(op.ms);
    case 'check':
      return;
    default:
      return applyDirOp(op, ctx);
  }
}
