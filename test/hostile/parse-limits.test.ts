// Issue 13: one compose file that is costly to parse held the event loop (50 000 keys: ~90 s), so
// no other app deployed meanwhile and SIGTERM waited. Dropped beside a good app, such files are
// refused by name while the good app deploys as if they were not there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { composeText, freePort, startHarness, waitUntil } from '../helpers/harness.ts';
import { manyKeysYaml, mergeAmplifiedYaml } from '../helpers/hostile-yaml.ts';
import { openStage } from '../soak/stage.ts';
import { defer } from '../helpers/cleanup.ts';

// CPU time (user + system, ms) process `pid` has used: fields 14 and 15 of /proc/PID/stat, in
// clock ticks of 10 ms.
async function cpuMs(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

test('files costly to parse, dropped with another app, are invalid by name and the other app deploys', { timeout: 60_000 }, async (t) => {
  const h = await startHarness(t);
  await h.start();
  const other = composeText(await freePort(), 'other');
  const hostile = [
    ['junk', manyKeysYaml(50_000), 'has more than 20000 YAML nodes (keys, values and list items'],
    ['bomb', mergeAmplifiedYaml(5_000, 99), 'past the limit of 100000; this looks like an alias bomb'],
  ] as const;
  // Written side by side, so they settle together and one pass builds all three.
  await Promise.all([...hostile.map(([name, text]) => h.put(`${name}.yml`, text)), h.put('other.yml', other)]);

  await h.deployed('other', other);
  for (const [name, , phrase] of hostile) {
    const status = await waitUntil(async () => (await h.statuses()).find((s) => s.app === name && s.phase === 'invalid'), `${name} invalid`);
    const error = status.last_error ?? '';
    assert.ok(error.startsWith(`${h.path(`${name}.yml`)}:`) && error.includes(phrase), error);
    assert.ok(h.decisions(name, 'invalid').some((l) => String(l.fields.REASON).includes(phrase)), `${name}: a journal line says why`);
  }
  assert.deepEqual(h.sim.state.list().map((v) => v.name), ['other'], 'only the good app has a VM');
});

test('SIGTERM while files costly to parse are decided stops the supervisor within its stop grace', { timeout: 90_000 }, async (t) => {
  // The supervisor as systemd runs it: `run` in a child process, so its event loop is its own.
  const stage = await openStage({ apps: { settle_ms: 200 }, prefix: 'dstack-parse-sigterm-' });
  defer(t, () => stage.close());
  const child = stage.spawn();
  let exit: number | null | undefined;
  void child.exited.then((code) => (exit = code));
  await child.ready;
  const cpuAtDrop = await cpuMs(child.pid);
  await stage.dropAll([['junk.yml', manyKeysYaml(50_000)], ['bomb.yml', mergeAmplifiedYaml(5_000, 99)], ['good.yml', composeText(await freePort(), 'good')]]);
  // The signal goes once the good app runs (nothing is left to parse), or once the supervisor has
  // spent 2 s of CPU since the drop, which only parsing the files can take: mid-parse, then.
  await waitUntil(
    async () => (await stage.phase('good')) === 'running' || (await cpuMs(child.pid)) - cpuAtDrop > 2_000,
    'the good app running, or 2 s of CPU spent on the drop',
    60_000,
  );
  process.kill(child.pid, 'SIGTERM');
  // 20 s is the supervisor's own stop grace for in-flight operations; systemd allows 120 s.
  await waitUntil(() => exit !== undefined, 'the supervisor to exit after SIGTERM', 20_000);
  assert.equal(exit, 0, child.tail());
});
