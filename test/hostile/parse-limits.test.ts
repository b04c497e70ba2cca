// Issue 13: one compose file that is costly to parse held the event loop (50 000 keys: ~90 s), so
// no other app deployed meanwhile. Dropped beside a good app, such files are refused by name
// while the good app deploys as if they were not there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { composeText, freePort, startHarness, waitUntil } from '../helpers/harness.ts';
import { manyKeysYaml, mergeAmplifiedYaml } from '../helpers/hostile-yaml.ts';

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
