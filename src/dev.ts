// `npm run dev`: the whole supervisor against a simulated host, in ./dev, as a new user would
// meet it. It lays out ./dev (a supervisor.toml with `[sim] enabled = true`, a fake sysroot and
// guest image, every path below ./dev, app files owned by the current user), then hands over to
// the real `run` command: it starts the simulated host, runs the real init path against it (KMS
// CVM included) and watches dev/apps.d until Ctrl-C.
import { access, mkdir, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { run } from './cli/run.ts';
import { loadConfig } from './config.ts';
import { writeFakeGuestImage, readSimImages } from './sim/guest-image.ts';
import { buildFakeSysroot, platformFeatures } from './sim/sysroot.ts';
import { simGpusOf } from './sim/vm-gpus.ts';

// supervisor.toml for `root`: every path below it, the simulated host, fast enough to watch.
function devConfigText(root: string, owner: number): string {
  const at = (path: string): string => JSON.stringify(join(root, path));
  return [
    '# Written by `npm run dev`; edit freely (delete it to get a fresh one).',
    `apps_dir = ${at('apps.d')}`,
    `gateway_dir = ${at('gateway.d')}`,
    `state_dir = ${at('state')}`,
    '',
    '[vmm]',
    `url = "unix:${join(root, 'sim', 'vmm.sock')}"`,
    'token_file = ""',
    '',
    '[auth]',
    `config_path = ${at('etc/auth-config.json')}`,
    '',
    '[init]',
    'enabled = true',
    `sysroot = ${at('sysroot')}`,
    `config_dir = ${at('etc')}`,
    `data_dir = ${at('data')}`,
    `run_dir = ${at('run')}`,
    `images_dir = ${at('data/images')}`,
    '',
    '[apps]',
    `owner = ${owner}`,
    '',
    '[sim]',
    'enabled = true',
    `dir = ${at('sim')}`,
    '# Two fake H200s bound to vfio-pci: init finds them and renders [cvm.gpu] (examples/gpu.yaml asks for one).',
    'gpus = [{ slot = "0000:18:00.0", product_id = "10de:2335" }, { slot = "0000:2a:00.0", product_id = "10de:2335" }]',
    '',
  ].join('\n');
}

// Create ./dev (keeping a supervisor.toml the user edited) and return its config path.
async function prepareDevDir(root: string, owner: number): Promise<string> {
  const configPath = join(root, 'supervisor.toml');
  // Explicit mode: a group-writable apps.d is refused (APPS_DIR_UNSAFE), whatever the umask.
  await mkdir(join(root, 'apps.d'), { recursive: true, mode: 0o755 });
  // There from the start, as the package ships /etc/dstack/gateway.d: a file dropped into it is
  // seen at once (the watch needs the directory), not at the next resync.
  await mkdir(join(root, 'gateway.d'), { recursive: true, mode: 0o755 });
  const exists = await access(configPath).then(() => true, () => false);
  if (!exists) await writeFile(configPath, devConfigText(root, owner));
  const config = await loadConfig(configPath);
  await buildFakeSysroot(config.init.sysroot, config.init, { ...platformFeatures(config.init.platform), gpus: simGpusOf(config.sim.gpus) });
  if ((await readSimImages(config.init.images_dir)).length === 0) await writeFakeGuestImage(config.init.images_dir);
  return configPath;
}

async function main(): Promise<number> {
  // A first argument that is no option names another directory (`npm run dev -- dev-b`): a second
  // simulated host, e.g. a KMS replica of the first (docs/fleet.md "KMS replicas").
  const [first, ...rest] = process.argv.slice(2);
  const dir = first !== undefined && !first.startsWith('-') ? first : undefined;
  const root = resolve(dir ?? 'dev');
  const configPath = await prepareDevDir(root, process.getuid?.() ?? 0);
  const rel = (path: string): string => relative(process.cwd(), path) || '.';
  process.stdout.write(
    [
      '',
      `dstack-supervisor dev: a simulated dstack host in ${rel(root)}/ (no CVM is real)`,
      `  config   ${rel(configPath)}`,
      '  next, in another terminal:',
      `    cp examples/hello.yaml ${rel(join(root, 'apps.d'))}/          # deploy a CVM publishing host port 8080`,
      '    curl http://127.0.0.1:8080/                   # the simulated app answers once it has booted',
      `    npx dstack-supervisor status --config ${rel(configPath)}`,
      `    rm ${rel(join(root, 'apps.d', 'hello.yaml'))}                     # tear it down (after 5 s)`,
      `    cp examples/gpu.yaml ${rel(join(root, 'apps.d'))}/            # a CVM given one of the two fake H200s (status: GPUS)`,
      '  Ctrl-C stops the supervisor and the simulated host.',
      '',
      '',
    ].join('\n'),
  );
  // Options after `npm run dev --` go to `run` (`--log-format json`).
  return run(['--config', configPath, ...(dir === undefined ? process.argv.slice(2) : rest)]);
}

process.exitCode = await main();
