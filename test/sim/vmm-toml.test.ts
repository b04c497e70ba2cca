// Issue 16 item 2: the simulated VMM answers from the vmm.toml a real one would read, not from
// values wired into the simulator: GetMeta, GetAppEnvEncryptPubKey, the guests' kms_urls and the
// port rules. Like dstack-vmm it reads the file when it starts; listening before init renders it,
// it reads the file at the first call after it appears; later edits apply at a restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseVmmToml } from '../../src/sim/vmm-toml.ts';
import { createVmmClient } from '../../src/vmm/client.ts';
import { defer } from '../helpers/cleanup.ts';
import { appCompose, makeTempDir, startTestHost } from './fixtures.ts';

// The keys of a vmm.toml as init renders it (templates/vmm.toml), KMS port 9317.
const RENDERED = `
kms_url = "https://127.0.0.1:9317"
run_path = "/srv/dstack/vm"
[cvm]
kms_urls = ["https://10.0.2.2:9317"]
gateway_urls = []
cid_pool_size = 500
max_allocable_vcpu = 20
max_allocable_memory_in_mb = 100000
[cvm.networking]
mode = "user"
[cvm.port_mapping]
enabled = true
address = "127.0.0.1"
range = [{ protocol = "tcp", from = 1, to = 20000 }]
[gateway]
base_domain = "localhost"
port = 8082
agent_port = 8090
`;

test('GetMeta and GetAppEnvEncryptPubKey come from vmm.toml once it exists; an edit applies at the next VMM restart', async (t) => {
  const dir = await makeTempDir(t);
  const vmmToml = join(dir, 'vmm.toml');
  const host = await startTestHost(t, { dir, vmmToml });
  const client = createVmmClient({ url: host.vmmUrl });
  defer(t, () => client.close());
  // Not rendered yet: the simulator's defaults, no KMS.
  assert.deepEqual((await client.getMeta()).kms, { url: '', urls: [] });
  await assert.rejects(client.getAppEnvEncryptPubKey('c0ffee00'.repeat(5)), { vmmMessage: 'KMS is not configured' });

  await writeFile(vmmToml, RENDERED);
  const meta = await client.getMeta();
  assert.deepEqual(meta.kms, { url: 'https://10.0.2.2:9317', urls: ['https://10.0.2.2:9317'] });
  assert.deepEqual(meta.resources, { max_cvm_number: 500, max_allocable_vcpu: 20, max_allocable_memory_in_mb: 100_000 });
  assert.deepEqual(meta.networking, { supported_modes: ['user'], default_mode: 'user', default_bridge: '' });
  assert.equal((await client.getAppEnvEncryptPubKey('c0ffee00'.repeat(5))).public_key.length, 64);
  // The port rules are the file's too: tcp up to 20000 only.
  await assert.rejects(
    client.createVm({ name: 'web', image: 'dstack-0.5.11', compose_file: appCompose('web'), ports: [{ protocol: 'tcp', host_address: '', host_port: 30000, vm_port: 80 }] }),
    { vmmMessage: 'Port mapping is not allowed for tcp:30000' },
  );

  // Read once: an edit waits for a restart, like `systemctl restart dstack-vmm`.
  await writeFile(vmmToml, RENDERED.replaceAll('9317', '9318'));
  assert.deepEqual((await client.getMeta()).kms.urls, ['https://10.0.2.2:9317']);
  await host.faults.restartVmm();
  assert.deepEqual((await client.getMeta()).kms.urls, ['https://10.0.2.2:9318']);
});

test('a key the file leaves out has upstream\'s built-in value; a malformed file names itself and the key', () => {
  const settings = parseVmmToml('kms_url = ""\n', '/etc/dstack/vmm.toml');
  assert.deepEqual([settings.kmsUrl, settings.kmsUrls, settings.portMapping.enabled, settings.maxAllocableVcpu], ['', ['http://127.0.0.1:8081'], false, 20]);
  assert.throws(() => parseVmmToml('[cvm]\nkms_urls = "https://x"\n', '/etc/dstack/vmm.toml'), {
    code: 'SIM_VMM_REJECTED',
    message: /^\/etc\/dstack\/vmm\.toml: cvm\.kms_urls: .*dstack-vmm would not start with it$/,
  });
  assert.throws(() => parseVmmToml('kms_url = [', '/etc/dstack/vmm.toml'), { message: /^\/etc\/dstack\/vmm\.toml: not valid TOML/ });
});

test('issue 19: [cvm.gpu] is read whole, upstream\'s built-in values where the file leaves a key out', () => {
  assert.deepEqual(parseVmmToml('', '/etc/dstack/vmm.toml').gpu, { enabled: false, listing: ['10de:2335'], include: [], exclude: [], allowAttachAll: true });
  const rendered = parseVmmToml('[cvm.gpu]\nenabled = true\nlisting = ["10de:2330", "10de:2335"]\nexclude = ["5d:00.0"]\nallow_attach_all = false\n', '/etc/dstack/vmm.toml');
  assert.deepEqual(rendered.gpu, { enabled: true, listing: ['10de:2330', '10de:2335'], include: [], exclude: ['5d:00.0'], allowAttachAll: false });
});
