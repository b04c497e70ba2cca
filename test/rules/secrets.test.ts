// Issue 7 end to end: NAME.env beside NAME.yaml reaches the VM encrypted for the app's
// KMS-signed key; value changes redeploy without a new hash; secrets never leave the .env file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile, chmod, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { startHarness, composeText, freePorts, waitUntil, type Harness } from '../helpers/harness.ts';

const SENTINEL = 'sentinel-7f3a9c-do-not-leak';

async function putEnv(h: Harness, name: string, text: string, mode = 0o600): Promise<void> {
  const path = join(h.appsDir, `${name}.env`);
  await writeFile(path, text);
  await chmod(path, mode);
}

const runningVm = (h: Harness, name: string) =>
  h.until((vms) => vms.some((v) => v.name === name && v.status === 'running' && v.boot_progress === 'done'), `${name} running`);

async function everyFile(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const path = join(entry.parentPath, entry.name);
    if (entry.isFile() && (await stat(path)).size < 4 * 1024 * 1024) out.push(path);
  }
  return out;
}

test('env values round-trip through the KMS key; a value change restarts without a new hash; a key change registers one', async (t) => {
  const h = await startHarness(t);
  const [port] = await freePorts(1);
  await putEnv(h, 'shop', `DB_PASSWORD=${SENTINEL}\nAPI_KEY="two words"\n`);
  await h.put('shop.yaml', composeText(port!));
  await h.start();
  await runningVm(h, 'shop');
  const vm = h.sim.state.list().find((v) => v.name === 'shop')!;
  const manifest = JSON.parse(vm.configuration!.compose_file);
  assert.deepEqual(manifest.allowed_envs, ['API_KEY', 'DB_PASSWORD']);
  assert.deepEqual(h.sim.envKeys.decrypt(vm.app_id, vm.configuration!.encrypted_env), [
    { key: 'API_KEY', value: 'two words' },
    { key: 'DB_PASSWORD', value: SENTINEL },
  ]);
  const answer = await (await fetch(`http://127.0.0.1:${port}/`)).text();
  assert.match(answer, /env: API_KEY, DB_PASSWORD/, 'the guest opened both names, and only names');
  assert.ok(!answer.includes(SENTINEL));
  const allowlistBefore = await h.allowlist();
  const startsBefore = h.mutations().filter((m) => m === 'StartVm').length;
  // Issue 17: the status tells which values the VM has (a keyed digest, never the values).
  const { env_digest: digestBefore } = await waitUntil(async () => (await h.statuses()).find((s) => s.app === 'shop' && s.phase === 'running'), 'shop status running');
  assert.match(digestBefore ?? '', /^[0-9a-f]{64}$/);

  await putEnv(h, 'shop', `DB_PASSWORD=${SENTINEL}-2\nAPI_KEY="two words"\n`);
  h.supervisor().poke();
  await waitUntil(() => {
    const v = h.sim.state.list().find((x) => x.name === 'shop');
    const env = v && h.sim.envKeys.decrypt(v.app_id, v.configuration!.encrypted_env);
    return env?.some((e) => e.value === `${SENTINEL}-2`) && v?.boot_progress === 'done' && v.status === 'running';
  }, 'new value delivered');
  await h.quiesce();
  assert.ok(h.mutations().filter((m) => m === 'StartVm').length > startsBefore, 'the VM was restarted to read the new value');
  assert.deepEqual(await h.allowlist(), allowlistBefore, 'a value change touches no hash');
  const shopAfter = await waitUntil(async () => (await h.statuses()).find((s) => s.app === 'shop' && s.phase === 'running'), 'shop status running again');
  assert.ok(shopAfter.env_digest && shopAfter.env_digest !== digestBefore, 'env_digest moved with the new value');

  await putEnv(h, 'shop', `DB_PASSWORD=${SENTINEL}-2\nAPI_KEY="two words"\nEXTRA=1\n`);
  h.supervisor().poke();
  await waitUntil(async () => {
    const v = h.sim.state.list().find((x) => x.name === 'shop');
    return v && JSON.parse(v.configuration!.compose_file).allowed_envs.includes('EXTRA') && v.boot_progress === 'done';
  }, 'key change deployed');
  await h.quiesce();
  const after = await h.allowlist();
  const hashes = Object.values(after)[0]!.composeHashes;
  assert.notDeepEqual(hashes, Object.values(allowlistBefore)[0]!.composeHashes, 'a key change is a new compose hash');

  await h.stop();
  const leaks: string[] = [];
  for (const path of await everyFile(h.dir)) {
    if (path.endsWith('shop.env')) continue;
    if ((await readFile(path)).includes(SENTINEL)) leaks.push(path);
  }
  for (const line of h.logs) if (JSON.stringify(line.fields).includes(SENTINEL)) leaks.push(`log: ${JSON.stringify(line.fields)}`);
  assert.deepEqual(leaks, [], 'the secret appears nowhere but in the .env file');
});

for (const fault of ['forge', 'stale'] as const) test(`a ${fault} env key is refused: the app is not deployed and its status says why`, async (t) => {
  const h = await startHarness(t);
  const [port] = await freePorts(1);
  h.sim.envKeys.setFault(fault);
  await putEnv(h, 'vault', `TOKEN=${SENTINEL}\n`);
  await h.put('vault.yaml', composeText(port!));
  await h.start();
  const failed = await waitUntil(async () => (await h.statuses()).find((s) => s.app === 'vault' && s.phase === 'failed'), 'vault failed');
  assert.match(failed.last_error ?? '', fault === 'forge' ? /sign/i : /old|stale|age/i);
  assert.equal(h.sim.state.list().length, 0, 'nothing was deployed');
  assert.ok(!h.mutations().includes('CreateVm'));
});

test('an env file that is not 0600/0400 is refused like a bad compose file', async (t) => {
  const h = await startHarness(t);
  const [port] = await freePorts(1);
  await putEnv(h, 'loose', `PASSWORD=${SENTINEL}\n`, 0o644);
  await h.put('loose.yaml', composeText(port!));
  await h.start();
  const invalid = await waitUntil(async () => (await h.statuses()).find((s) => s.app === 'loose' && s.phase === 'invalid'), 'loose invalid');
  assert.match(invalid.last_error ?? '', /chmod 600/);
  assert.ok(!(invalid.last_error ?? '').includes(SENTINEL));
  assert.equal(h.sim.state.list().length, 0);
});
