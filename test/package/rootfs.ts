// The Debian 12 root the package test boots: built once with debootstrap (minbase plus systemd
// and dbus, and deliberately no Node.js, so the package must bring its own; python3 and
// python3-apt so Ansible's modules run on it, as on any host Ansible manages) and cached between
// runs; each run copies the cache into its own temp dir (docs/platform-notes.md §2, test B).
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

// Bump when the recipe below changes: a new key builds a new root beside the old one.
export const ROOTFS_KEY = 'bookworm-minbase-systemd-python-v2';

// Where cached roots live; DSTACK_TEST_ROOTFS_CACHE overrides it.
export function rootfsCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env['DSTACK_TEST_ROOTFS_CACHE'] || '/var/cache/dstack-supervisor-test';
}

const SUITE = 'bookworm';
const FALLBACK_MIRROR = 'http://deb.debian.org/debian';
// systemd and dbus make it bootable with a real PID 1; apt is in minbase already. The host role's
// test (test/fleet/host.fleet.ts) runs Ansible's modules in it: python3, and python3-apt for
// ansible.builtin.apt (which would otherwise try to download it, and the container has no network).
const INCLUDE = ['systemd', 'systemd-sysv', 'dbus', 'python3', 'python3-apt'];

// The Debian mirror apt on this machine uses for `bookworm main`, read from one-line
// (sources.list, *.list) and deb822 (*.sources) files; deb.debian.org when none names it.
export async function findDebianMirror(aptDir = '/etc/apt', env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const override = env['DSTACK_TEST_DEBIAN_MIRROR'];
  if (override) return override;
  const files = [join(aptDir, 'sources.list')];
  const partDir = join(aptDir, 'sources.list.d');
  if (existsSync(partDir)) files.push(...(await readdir(partDir)).sort().map((name) => join(partDir, name)));
  for (const file of files) {
    if (!existsSync(file)) continue;
    const text = await readFile(file, 'utf8');
    const uri = file.endsWith('.sources') ? mirrorFromDeb822(text) : file.endsWith('.list') ? mirrorFromOneLine(text) : undefined;
    if (uri !== undefined) return uri;
  }
  return FALLBACK_MIRROR;
}

function mirrorFromOneLine(text: string): string | undefined {
  for (const raw of text.split('\n')) {
    // `deb [options] URI SUITE COMPONENT...`
    const words = raw.replace(/#.*/, '').replace(/\[[^\]]*\]/, '').trim().split(/\s+/);
    if (words[0] === 'deb' && words[2] === SUITE && words.slice(3).includes('main') && words[1] !== undefined) return words[1];
  }
  return undefined;
}

function mirrorFromDeb822(text: string): string | undefined {
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    for (const line of stanza.split('\n')) {
      const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
      if (m?.[1] !== undefined && m[2] !== undefined) fields.set(m[1].toLowerCase(), m[2].trim());
    }
    const words = (key: string): string[] => (fields.get(key) ?? '').split(/\s+/);
    if (fields.get('enabled') === 'no') continue;
    if (words('types').includes('deb') && words('suites').includes(SUITE) && words('components').includes('main')) return words('uris')[0];
  }
  return undefined;
}

// The cached root for ROOTFS_KEY, debootstrapping it first when it is missing. The root is built
// beside its final name and renamed into place, so a half-built root is never reused.
export async function ensureRootfs(log: (line: string) => void): Promise<string> {
  const cache = rootfsCacheDir();
  const root = join(cache, ROOTFS_KEY);
  if (existsSync(join(root, 'usr/lib/systemd/systemd'))) return root;
  await mkdir(cache, { recursive: true });
  const building = `${root}.building-${process.pid}`;
  await rm(building, { recursive: true, force: true });
  const mirror = await findDebianMirror();
  log(`building the cached Debian root ${root} from ${mirror} (once; later runs reuse it)`);
  try {
    await execa('debootstrap', ['--variant=minbase', `--include=${INCLUDE.join(',')}`, SUITE, building, mirror], { all: true });
    // Nothing in the root needs the downloaded .debs again.
    await execa('chroot', [building, 'apt-get', 'clean']);
    await rename(building, root);
  } catch (err) {
    await rm(building, { recursive: true, force: true });
    // Another run may have finished the same root meanwhile.
    if (existsSync(join(root, 'usr/lib/systemd/systemd'))) return root;
    throw err;
  }
  return root;
}

// A private copy of the cached root for one test run (reflinked where the file system can).
export async function copyRootfs(cached: string, dest: string): Promise<void> {
  await execa('cp', ['-a', '--reflink=auto', `${cached}/.`, dest]);
}
