// `run` on a simulated host with init, as `npm run dev` starts it: the KMS URL it settled on is in
// the journal, the simulated VMM reports the KMS of the vmm.toml init rendered, and Ctrl-C says what
// it means there (the simulated CVMs live in this process).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { parse as parseToml } from 'smol-toml';
import { Agent, request } from 'undici';
import { createVmmClient } from '../../src/vmm/client.ts';
import { defer } from '../helpers/cleanup.ts';
import { waitUntil } from '../helpers/harness.ts';

const BIN = join(import.meta.dirname, '../../bin/dstack-supervisor.mjs');

test('issue 15: a simulated host names its KMS URL, and SIGINT says the simulated CVMs stop with it', { timeout: 120_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dstack-sim-run-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  const at = (path: string) => JSON.stringify(join(dir, path));
  await mkdir(join(dir, 'apps.d'), { mode: 0o755 });
  const config = join(dir, 'supervisor.toml');
  await writeFile(config, [
    `apps_dir = ${at('apps.d')}`,
    `gateway_dir = ${at('gateway.d')}`,
    `state_dir = ${at('state')}`,
    `[vmm]\nurl = "unix:${join(dir, 'sim', 'vmm.sock')}"\ntoken_file = ""`,
    `[auth]\nconfig_path = ${at('etc/auth-config.json')}`,
    `[init]\nenabled = true\nconfig_dir = ${at('etc')}\ndata_dir = ${at('data')}\nrun_dir = ${at('run')}\nimages_dir = ${at('data/images')}`,
    `[apps]\nowner = ${process.getuid?.() ?? 0}`,
    `[sim]\nenabled = true\ndir = ${at('sim')}`,
  ].join('\n'));
  const child = execa(process.execPath, [BIN, 'run', '--config', config], { reject: false, env: { DSTACK_SUPERVISOR_CONFIG: '' } });
  defer(t, async () => {
    child.kill('SIGKILL');
    await child;
  });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  // A timeout says what the child printed: it has taken 90 s only in full runs on a loaded machine.
  const url = await waitUntil(() => /init done: KMS CVM \S+ answers at (https:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1], 'the init summary with the KMS URL', 90_000).catch(
    (err: unknown) => Promise.reject(new Error(`${(err as Error).message}; the child printed:\n${out.slice(-4000)}`)),
  );
  const dispatcher = new Agent({ connect: { rejectUnauthorized: false } });
  defer(t, () => dispatcher.close());
  const health = await request(`${url}/health`, { dispatcher });
  assert.equal(health.statusCode, 200, 'the URL named is the KMS');
  await health.body.dump();

  // Issue 16 item 2: GetMeta named a hard-coded https://10.0.2.2:12001; it is vmm.toml's
  // [cvm] kms_urls, whose port is the one the KMS answers on.
  const vmm = createVmmClient({ url: `unix:${join(dir, 'sim', 'vmm.sock')}` });
  defer(t, () => vmm.close());
  const rendered = parseToml(await readFile(join(dir, 'etc', 'vmm.toml'), 'utf8')) as { kms_url: string; cvm: { kms_urls: string[] } };
  const meta = await vmm.getMeta();
  assert.deepEqual(meta.kms.urls, rendered.cvm.kms_urls);
  assert.equal(new URL(meta.kms.url).port, new URL(url).port);
  assert.equal(rendered.kms_url, url, 'kms_url, where GetAppEnvEncryptPubKey goes, is the KMS too');

  // SIGINT is handled once the supervisor watches apps.d; init comes before that.
  await waitUntil(() => /watching \S+apps\.d/.test(out), 'the supervisor watching apps.d', 30_000);
  child.kill('SIGINT');
  const result = await child;
  assert.equal(result.exitCode, 0);
  assert.match(out, /SIGINT: stopping; the simulated CVMs stop with this process \(on a real host apps keep running\)/);
  assert.doesNotMatch(out, /SIGINT: stopping; running apps keep running/);
});
