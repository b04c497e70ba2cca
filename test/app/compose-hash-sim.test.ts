// Issue 2 acceptance: for every fixture compose file, the hash the supervisor computes equals the
// simulated VMM's GetComposeHash of the same bytes, over the real prpc wire in both encodings,
// and the manifest carries exactly the field set upstream's dstack-cli-core sets (docs/dstack.md §3).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildAppSpec } from '../../src/app/spec.ts';
import { decodeComposeText } from '../../src/app/parse.ts';
import { createVmmClient } from '../../src/vmm/client.ts';
import { startSimHost } from '../../src/sim/host.ts';
import { MANIFEST_FIELDS_WITH_ENVS } from './helpers.ts';
import { defer } from '../helpers/cleanup.ts';

const FIXTURES = join(import.meta.dirname, '../fixtures/compose');

test('20 fixtures: our compose hash == the simulated VMM GetComposeHash (protobuf and JSON); fields as docs/dstack.md §3', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hash-sim-'));
  const sim = await startSimHost({ dir });
  defer(t, async () => {
    await sim.stop();
    await rm(dir, { recursive: true, force: true });
  });
  const files = (await readdir(FIXTURES)).filter((f) => /\.ya?ml$/.test(f)).sort();
  assert.equal(files.length, 20);
  for (const mode of ['protobuf', 'json'] as const) {
    const client = createVmmClient({ url: sim.vmmUrl, mode });
    defer(t, () => client.close());
    for (const f of files) {
      const file = join(FIXTURES, f);
      const text = decodeComposeText(file, await readFile(file));
      const spec = buildAppSpec({ name: 'fixture', file, text, envKeys: ['SECRET'], defaults: { image: 'dstack-0.5.11', vcpu: 1, memory: 1024, disk: 10, portAddress: '127.0.0.1' } });
      const remote = await client.getComposeHash({ name: 'fixture', image: 'dstack-0.5.11', compose_file: spec.manifest, vcpu: 1, memory: 1024, disk_size: 10 });
      assert.equal(remote, spec.composeHash, `${f} (${mode})`);
      const manifest = JSON.parse(spec.manifest) as Record<string, unknown>;
      assert.deepEqual(Object.keys(manifest), MANIFEST_FIELDS_WITH_ENVS, f);
      assert.equal(manifest['docker_compose_file'], text, `${f}: the file's exact text`);
    }
  }
});
