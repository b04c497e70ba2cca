// The program as the package ships it: one esbuild bundle run by plain Node 24, without type
// stripping. Built into bench/.bundle/ (gitignored) so dist/ (the packaging's) is left alone, yet
// proto/ is still found in a parent directory as it is beside the installed program; the
// options are the ones scripts/bundle.mjs uses.
import { build } from 'esbuild';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');

// Bundle src/cli.ts's entry into bench/.bundle/; resolves with the file's path.
export async function buildBundle(): Promise<string> {
  const outfile = join(ROOT, 'bench', '.bundle', 'dstack-supervisor.mjs');
  await build({
    stdin: {
      contents: "import { main } from './src/cli.ts';\nprocess.exitCode = await main(process.argv.slice(2));",
      resolveDir: ROOT,
      sourcefile: 'bench-entry.ts',
      loader: 'ts',
    },
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node24',
    external: ['x11', 'usocket'],
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    logLevel: 'warning',
  });
  return outfile;
}
