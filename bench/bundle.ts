// The program as the package ships it: the esbuild bundle (scripts/bundle.mjs, the very script
// `npm run build` runs) run by plain Node 24 with the flags of packaging/files/node-flags, without
// type stripping. Built into bench/.bundle/ (gitignored) so dist/ (the packaging's) is left
// alone, yet proto/ is still found in a parent directory as it is beside the installed program.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readNodeFlags } from '../src/node-flags.ts';

const ROOT = join(import.meta.dirname, '..');

// Bundle src/cli.ts's entry into bench/.bundle/; resolves with the entry file's path.
export async function buildBundle(): Promise<string> {
  const outdir = join(ROOT, 'bench', '.bundle');
  await promisify(execFile)(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs'), '--outdir', outdir], { cwd: ROOT });
  return join(outdir, 'dstack-supervisor.mjs');
}

// How a bench starts the supervisor: the bundle (else the sources, through bin/) and the flags
// the package's launcher passes (`flags` 0 leaves them out, to measure what they change), plus a
// CPU profile into bench/profiles/ when `profile` is set. `described` is what the result reports.
export async function shippedProgram(args: { bundle: number; flags: number; profile?: number }): Promise<{
  bin: string | undefined;
  nodeArgs: string[];
  described: { program: string; nodeFlags: string[] };
}> {
  const nodeFlags = args.flags ? readNodeFlags() : [];
  const profile = args.profile ? ['--cpu-prof', `--cpu-prof-dir=${join(ROOT, 'bench', 'profiles')}`] : [];
  return {
    bin: args.bundle ? await buildBundle() : undefined,
    nodeArgs: [...nodeFlags, ...profile],
    described: { program: args.bundle ? 'esbuild bundle' : 'sources (type stripping)', nodeFlags },
  };
}
