import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigSchema } from '../../src/config.ts';
import { InitError } from '../../src/init/errors.ts';
import { initJournalPath, recordInitStep } from '../../src/init/journal.ts';
import type { InitJournal } from '../../src/init/journal.ts';
import { loadReservedHostPorts, reservedHostPorts } from '../../src/init/reserved-ports.ts';
import { tempDir } from './helpers.ts';

const NO_JOURNAL: InitJournal = { version: 1, steps: {} };
const journalWith = (steps: InitJournal['steps']): InitJournal => ({ version: 1, steps });
const step = (detail: Record<string, number | string>) => ({ finished_at: '2026-01-01T00:00:00.000Z', detail });

// Issue 13 item 5: the host ports the host's own services hold, so a file asking for one is
// refused at plan time. [case, supervisor.toml as an object, journal, "port owner" expected]
const CASES: [string, Record<string, unknown>, InitJournal, string[]][] = [
  ['a unix-socket VMM, init off: nothing', { init: { enabled: false } }, NO_JOURNAL, []],
  ['the VMM on tcp:', { init: { enabled: false }, vmm: { url: 'tcp:127.0.0.1:9080' } }, NO_JOURNAL, ["9080 dstack-vmm's ([vmm] url)"]],
  ['the VMM on http:// without a port', { init: { enabled: false }, vmm: { url: 'http://127.0.0.1' } }, NO_JOURNAL, ["80 dstack-vmm's ([vmm] url)"]],
  ['the VMM on https://', { init: { enabled: false }, vmm: { url: 'https://vmm.example:8443' } }, NO_JOURNAL, ["8443 dstack-vmm's ([vmm] url)"]],
  [
    'the KMS port init rendered and deployed, once',
    { init: { enabled: false } },
    journalWith({ render: step({ kms_port: 9201 }), kms: step({ vm_id: 'v', url: 'https://10.0.2.2:9201', port: 9201 }) }),
    ["9201 the KMS's (init)"],
  ],
  ['[init] kms_port before init ran', { init: { kms_port: 9300 } }, NO_JOURNAL, ["9300 the KMS's ([init] kms_port)", "8001 auth-simple's (init, [init] auth_port)", "3443 the key provider's (init, [init] key_provider_port)"]],
  [
    'a KMS URL guests reach on this host, but not one elsewhere',
    { init: { enabled: false }, apps: { kms_urls: ['https://10.0.2.2:9400', 'https://kms.example:9500'] } },
    NO_JOURNAL,
    ["9400 the KMS's ([apps] kms_urls)"],
  ],
  [
    'init on: auth-simple and the key provider, as configured',
    { vmm: { url: 'http://127.0.0.1:9080' }, init: { auth_port: 8101, key_provider_port: 3543 } },
    journalWith({ render: step({ kms_port: 9201 }) }),
    ["9080 dstack-vmm's ([vmm] url)", "9201 the KMS's (init)", "8101 auth-simple's (init, [init] auth_port)", "3543 the key provider's (init, [init] key_provider_port)"],
  ],
];

for (const [name, raw, journal, expected] of CASES) {
  test(`reserved host ports: ${name}`, () => {
    const ports = reservedHostPorts(ConfigSchema.parse(raw), journal);
    assert.deepEqual(ports.map((p) => `${p.port} ${p.owner}`), expected);
    assert.ok(ports.every((p) => p.protocol === 'tcp'));
  });
}

test('loadReservedHostPorts reads the KMS port from <state_dir>/init.json', async (t) => {
  const stateDir = join(await tempDir(t), 'state');
  const config = ConfigSchema.parse({ state_dir: stateDir, init: { enabled: false } });
  assert.deepEqual(await loadReservedHostPorts(config), []);
  await recordInitStep(stateDir, 'render', { kms_port: 9201 }, () => 0);
  assert.deepEqual(await loadReservedHostPorts(config), [{ protocol: 'tcp', port: 9201, owner: "the KMS's (init)" }]);
});

test('loadReservedHostPorts: an unreadable init.json is INIT_JOURNAL, never a guess', async (t) => {
  const stateDir = join(await tempDir(t), 'state');
  await mkdir(stateDir);
  await writeFile(initJournalPath(stateDir), '{"version": 1, "steps": ');
  const err = await loadReservedHostPorts(ConfigSchema.parse({ state_dir: stateDir })).catch((e: unknown) => e);
  assert.ok(err instanceof InitError);
  assert.equal(err.code, 'INIT_JOURNAL');
});
