// Builds the .deb the package tests install, exactly as `npm run package` does (bundle, then
// scripts/package.mjs), into a directory the test owns; and says why a test cannot run here.
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

// Bundle the sources and build dstack-supervisor_<version>_amd64.deb into `outDir`; returns its
// path. The .rpm is left out: nothing here installs it.
export async function buildDeb(outDir: string): Promise<string> {
  await execa(process.execPath, [join(ROOT, 'scripts/bundle.mjs')], { cwd: ROOT });
  const { stdout } = await execa(process.execPath, [join(ROOT, 'scripts/package.mjs'), '--out', outDir, '--no-rpm'], { cwd: ROOT });
  const deb = stdout.trim().split('\n').at(-1);
  if (deb === undefined || !deb.endsWith('.deb')) throw new Error(`scripts/package.mjs printed no .deb path: ${stdout}`);
  return deb;
}

// Why a test needing `tools` (and root) cannot run on this machine, or false when it can. The
// reason names the apt packages that bring the tools, as .ci/run installs them.
export async function whyNotRunnable(tools: Record<string, string>): Promise<string | false> {
  if (process.getuid?.() !== 0) return 'not run: needs root (debootstrap, systemd-nspawn and dpkg install files as root)';
  const missing: string[] = [];
  for (const [tool, aptPackage] of Object.entries(tools)) {
    const found = await execa('sh', ['-c', `command -v ${tool}`], { reject: false });
    if (found.exitCode !== 0) missing.push(`${tool} (apt package ${aptPackage})`);
  }
  if (missing.length === 0) return false;
  const packages = [...new Set(Object.entries(tools).map(([, pkg]) => pkg))].join(' ');
  return `not run: ${missing.join(', ')} not installed; apt-get install --no-install-recommends ${packages}`;
}
