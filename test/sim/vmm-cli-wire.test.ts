// Issue 16 item 1 acceptance: the simulated VMM answers upstream's own client. Every request here
// is written out as dstack/vmm/src/vmm-cli.py (Dstack-TEE/dstack at 312dc605) sends it for one
// command: `VmmCLI.rpc_call` POSTs `/prpc/<Method>?json` with `Content-Type: application/json` and
// the body `json.dumps(params or {})`, params built in the order the CLI builds them; and every
// reply is read the way the CLI reads it (JSON when the content type says so, status 200 or an
// "API call failed" with the body). Nothing here goes through our own VMM client.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'undici';
import { hashCompose } from '../../src/sim/vm-rules.ts';
import { DEFAULT_SIM_IMAGE } from '../../src/sim/vmm-config.ts';
import type { SimHostOptions } from '../../src/sim/host.ts';
import { defer } from '../helpers/cleanup.ts';
import { freePort, startTestHost } from './fixtures.ts';

const IMAGE = DEFAULT_SIM_IMAGE.name;
const NEWER_IMAGE = { name: 'dstack-0.5.12', version: '0.5.12', digest: 'b'.repeat(64) };

// Python's json.dumps with its defaults: ", " and ": " separators, non-ASCII as \uXXXX.
function pyDumps(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `[${value.map(pyDumps).join(', ')}]`;
  if (typeof value === 'object') return `{${Object.entries(value).map(([k, v]) => `${pyDumps(k)}: ${pyDumps(v)}`).join(', ')}}`;
  if (typeof value === 'string') return JSON.stringify(value).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return JSON.stringify(value);
}

// `vmm-cli.py compose --name NAME --docker-compose FILE --output app-compose.json`: the keys in
// create_app_compose's order, json.dumps(indent=4), which JSON.stringify matches for ASCII.
function cliAppCompose(name: string, dockerCompose: string): string {
  const compose = {
    manifest_version: 2, name, runner: 'docker-compose', docker_compose_file: dockerCompose, kms_enabled: false, gateway_enabled: false,
    local_key_provider_enabled: false, key_provider_id: '', public_logs: false, public_sysinfo: false, allowed_envs: [], no_instance_id: false, secure_time: false,
  };
  return JSON.stringify(compose, null, 4);
}

type CliReply = { status: number; body: unknown };

function parseOr(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

async function startCliWire(t: TestContext, options: Partial<SimHostOptions> = {}) {
  const host = await startTestHost(t, { images: [DEFAULT_SIM_IMAGE, NEWER_IMAGE], ...options });
  const agent = new Agent({ connect: { socketPath: host.socketPath } });
  defer(t, () => agent.close());
  // VmmClient.request: JSON when the content type is JSON or the body starts with { or [, and the
  // text as it is when that does not parse (the simulator's /logs lines start with "[sim]").
  const exchange = async (method: 'GET' | 'POST', path: string, body?: string): Promise<CliReply> => {
    const res = await request(`http://localhost${path}`, { dispatcher: agent, method, headers: { 'content-type': 'application/json' }, ...(body === undefined ? {} : { body }) });
    const text = await res.body.text();
    const json = String(res.headers['content-type']).includes('application/json') || /^[{[]/.test(text);
    return { status: res.statusCode, body: json ? parseOr(text) : text };
  };
  const rpc = (method: string, body = '{}'): Promise<CliReply> => exchange('POST', `/prpc/${method}?json`, body);
  const info = async (id: string) => {
    const reply = await rpc('GetInfo', pyDumps({ id }));
    const { found, info: vm } = reply.body as { found: boolean; info: { app_id: string; status: string; configuration: Record<string, unknown> } };
    assert.equal(found, true);
    return vm;
  };
  // `deploy --name NAME --image IMAGE --compose app-compose.json --port tcp:PORT:80`: create_vm's
  // params, app_id None (json null) without --app-id; prints response.get('id'). `--gpu SLOT` and
  // `--ppcie` add `gpus` after the literal (`extra`).
  const createParams = (name: string, hostPort: number, extra: Record<string, unknown> = {}) => ({
    name, image: IMAGE, compose_file: cliAppCompose(name, `services:\n  ${name}:\n    image: nginx\n`), vcpu: 1, memory: 1024, disk_size: 20, app_id: null,
    user_config: '', ports: [{ protocol: 'tcp', host_address: '127.0.0.1', host_port: hostPort, vm_port: 80 }], hugepages: false, pin_numa: false, stopped: false, no_tee: false,
    ...extra,
  });
  const deploy = async (name: string, hostPort: number, extra: Record<string, unknown> = {}): Promise<string> => {
    const reply = await rpc('CreateVm', pyDumps(createParams(name, hostPort, extra)));
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    return (reply.body as { id: string }).id;
  };
  return { host, exchange, rpc, info, deploy, createParams };
}

test('deploy, lsvm -v, info, lsimage, stop, stop -f, start, logs, remove: the commands the simulator already served', async (t) => {
  const { host, exchange, rpc, info, deploy } = await startCliWire(t);
  const id = await deploy('web', await freePort());
  const lsvm = await rpc('Status');
  const [vm] = (lsvm.body as { vms: { id: string; app_id: string; name: string; status: string; uptime: string; configuration: { vcpu: number; memory: number; image: string } }[] }).vms;
  assert.deepEqual([vm?.id, vm?.name, vm?.status, vm?.configuration.vcpu, vm?.configuration.memory, vm?.configuration.image], [id, 'web', 'running', 1, 1024, IMAGE]);
  assert.equal(vm?.app_id, hashCompose(cliAppCompose('web', 'services:\n  web:\n    image: nginx\n')).slice(0, 40));
  assert.equal((await info(id)).configuration['disk_size'], 20);
  const images = (await rpc('ListImages')).body as { images: { name: string; version: string }[] };
  assert.deepEqual(images.images.map((i) => [i.name, i.version]), [[IMAGE, '0.5.11'], ['dstack-0.5.12', '0.5.12']]);
  await host.state.waitFor((vms) => vms[0]?.boot_progress === 'done');
  assert.deepEqual(await rpc('ShutdownVm', pyDumps({ id })), { status: 200, body: null });
  await host.state.waitFor((vms) => vms[0]?.status === 'stopped');
  assert.deepEqual(await rpc('StartVm', pyDumps({ id })), { status: 200, body: null });
  assert.deepEqual(await rpc('StopVm', pyDumps({ id })), { status: 200, body: null });
  const logs = await exchange('GET', `/logs?id=${id}&follow=false&ansi=false&lines=20`);
  assert.equal(logs.status, 200);
  assert.match(String(logs.body), /boot\.progress: done/);
  assert.deepEqual(await rpc('RemoveVm', pyDumps({ id })), { status: 200, body: null });
});

test('update-app-compose: UpgradeApp {id, compose_file} replaces the compose; the reply is the new compose app id', async (t) => {
  const { host, rpc, info, deploy } = await startCliWire(t);
  const id = await deploy('web', await freePort());
  const appId = (await info(id)).app_id;
  const compose = cliAppCompose('web', 'services:\n  web:\n    image: nginx:1.27\n');
  const reply = await rpc('UpgradeApp', pyDumps({ id, compose_file: compose }));
  assert.deepEqual(reply, { status: 200, body: { id: hashCompose(compose).slice(0, 40) } });
  assert.deepEqual([(await info(id)).configuration['compose_file'], (await info(id)).app_id], [compose, appId]);
  const invalid = await rpc('UpgradeApp', pyDumps({ id, compose_file: '{"name": "web"}' }));
  assert.equal(invalid.status, 400);
  assert.match((invalid.body as { error: string }).error, /^Invalid compose file: missing field `manifest_version`/);
  const unknown = await rpc('UpgradeApp', pyDumps({ id: '0d9c5a8e-0000-4000-8000-000000000000', compose_file: compose }));
  assert.deepEqual(unknown, { status: 400, body: { error: 'The instance 0d9c5a8e-0000-4000-8000-000000000000 not found' } });
  assert.deepEqual(host.faults.calls().filter((m) => m === 'UpgradeApp').length, 3);
});

test('update-user-config: UpgradeApp {id, user_config}; the reply id is "" (no compose sent)', async (t) => {
  const { rpc, info, deploy } = await startCliWire(t);
  const id = await deploy('web', await freePort());
  assert.deepEqual(await rpc('UpgradeApp', pyDumps({ id, user_config: '{"ssh_keys": ["ssh-ed25519 AAAA"]}\n' })), { status: 200, body: { id: '' } });
  assert.equal((await info(id)).configuration['user_config'], '{"ssh_keys": ["ssh-ed25519 AAAA"]}\n');
});

test('update-ports: UpgradeApp {id, update_ports, ports} from protocol[:address]:from:to; a port another VM holds is refused', async (t) => {
  const { rpc, info, deploy } = await startCliWire(t);
  const [first, second, third] = [await freePort(), await freePort(), await freePort()];
  const id = await deploy('web', first);
  const other = await deploy('blog', second);
  // parse_port_mapping: "tcp:PORT:80" gets host_address 127.0.0.1; "udp:0.0.0.0:5353:53" keeps its own.
  const ports = [
    { protocol: 'tcp', host_address: '127.0.0.1', host_port: third, vm_port: 80 },
    { protocol: 'udp', host_address: '0.0.0.0', host_port: 5353, vm_port: 53 },
  ];
  assert.deepEqual(await rpc('UpgradeApp', pyDumps({ id, update_ports: true, ports })), { status: 200, body: { id: '' } });
  assert.deepEqual((await info(id)).configuration['ports'], ports);
  const clash = await rpc('UpgradeApp', pyDumps({ id, update_ports: true, ports: [{ protocol: 'tcp', host_address: '127.0.0.1', host_port: second, vm_port: 80 }] }));
  assert.deepEqual(clash, { status: 400, body: { error: `host port mapping conflicts with VM ${other}: tcp 127.0.0.1:${second}` } });
  const twice = await rpc('UpgradeApp', pyDumps({ id, update_ports: true, ports: [ports[0], ports[0]] }));
  assert.deepEqual(twice, { status: 400, body: { error: `duplicate host port mapping: tcp 127.0.0.1:${third}` } });
});

test('resize: ResizeVm {id, vcpu, memory, disk_size, image} needs a stopped VM; disks only grow', async (t) => {
  const { rpc, info, deploy } = await startCliWire(t);
  const id = await deploy('web', await freePort());
  // `resize ID --vcpu 2 --memory 2G --disk 40G --image dstack-0.5.12`
  const body = pyDumps({ id, vcpu: 2, memory: 2048, disk_size: 40, image: 'dstack-0.5.12' });
  assert.deepEqual(await rpc('ResizeVm', body), { status: 400, body: { error: `vm should be stopped before resize: ${id}` } });
  await rpc('StopVm', pyDumps({ id }));
  assert.deepEqual(await rpc('ResizeVm', body), { status: 200, body: null });
  const { configuration } = await info(id);
  assert.deepEqual([configuration['vcpu'], configuration['memory'], configuration['disk_size'], configuration['image']], [2, 2048, 40, 'dstack-0.5.12']);
  assert.deepEqual(await rpc('ResizeVm', pyDumps({ id, disk_size: 20 })), { status: 400, body: { error: 'Cannot shrink disk size' } });
  assert.deepEqual(await rpc('ResizeVm', pyDumps({ id, vcpu: 0 })), { status: 400, body: { error: 'vcpu must be greater than zero' } });
  assert.deepEqual(await rpc('ResizeVm', pyDumps({ id, image: 'dstack-9.9.9' })), {
    status: 400,
    body: { error: 'Failed to load VM: Failed to load image: image directory dstack-9.9.9 not found' },
  });
});

test('update: ResizeVm, GetInfo, then one UpgradeApp with everything else, as update_vm sends them', async (t) => {
  const { host, rpc, info, deploy } = await startCliWire(t);
  const id = await deploy('web', await freePort());
  await rpc('StopVm', pyDumps({ id }));
  // `update ID --vcpu 4 --memory 4G --compose docker-compose.yml --user-config uc.json
  //  --kms-url https://10.0.2.2:9201 --no-ports --no-gpus --no-tee`
  const calls = host.faults.calls().length;
  assert.deepEqual(await rpc('ResizeVm', pyDumps({ vcpu: 4, memory: 4096, id })), { status: 200, body: null });
  const before = await info(id);
  const dockerCompose = 'services:\n  web:\n    image: nginx:1.27\n';
  const compose = JSON.stringify({ ...JSON.parse(String(before.configuration['compose_file'])), docker_compose_file: dockerCompose }, null, 4);
  const upgrade = {
    id, compose_file: compose, user_config: '{}', update_kms_urls: true, kms_urls: ['https://10.0.2.2:9201'], update_ports: true, ports: [],
    gpus: { attach_mode: 'listed', gpus: [] }, no_tee: true,
  };
  assert.deepEqual(await rpc('UpgradeApp', pyDumps(upgrade)), { status: 200, body: { id: hashCompose(compose).slice(0, 40) } });
  assert.deepEqual(host.faults.calls().slice(calls), ['ResizeVm', 'GetInfo', 'UpgradeApp']);
  const { configuration, app_id: appId } = await info(id);
  assert.equal(appId, before.app_id);
  assert.deepEqual(
    [configuration['vcpu'], configuration['memory'], configuration['compose_file'], configuration['user_config'], configuration['kms_urls'], configuration['ports'], configuration['no_tee']],
    [4, 4096, compose, '{}', ['https://10.0.2.2:9201'], [], true],
  );
  // `update ID --ppcie` asks for every GPU of a host whose VMM has them off.
  assert.deepEqual(await rpc('UpgradeApp', pyDumps({ id, gpus: { attach_mode: 'all' } })), { status: 400, body: { error: 'GPU is not enabled' } });
});

test('lsgpu: ListGpus {} lists no GPU ([cvm.gpu] enabled = false) and says whether all may be attached', async (t) => {
  const { rpc } = await startCliWire(t);
  const reply = await rpc('ListGpus');
  assert.deepEqual(reply, { status: 200, body: { gpus: [], allow_attach_all: true } });
});

test('issue 19: lsgpu on a host with GPUs, deploy --gpu SLOT, and --ppcie where vmm.toml does not allow it', async (t) => {
  const gpus = ['0000:18:00.0', '0000:2a:00.0'].map((address) => ({ address, productId: '10de:2335', driver: 'vfio-pci' }));
  const gpu = { enabled: true, listing: ['10de:2335'], include: [], exclude: [], allowAttachAll: false };
  const { host, rpc, info, deploy, createParams } = await startCliWire(t, { gpus, settings: { gpu } });
  const h200 = (slot: string, isFree: boolean) => ({ slot, product_id: '10de:2335', description: 'NVIDIA Corporation GH100 [H200 SXM 141GB]', is_free: isFree });
  assert.deepEqual(await rpc('ListGpus'), { status: 200, body: { gpus: [h200('18:00.0', true), h200('2a:00.0', true)], allow_attach_all: false } });
  const id = await deploy('llm', await freePort(), { gpus: { attach_mode: 'listed', gpus: [{ slot: '18:00.0' }] } });
  assert.deepEqual((await info(id)).configuration['gpus'], { gpus: [{ slot: '18:00.0' }], attach_mode: 'listed' });
  assert.deepEqual(await rpc('ListGpus'), { status: 200, body: { gpus: [h200('18:00.0', false), h200('2a:00.0', true)], allow_attach_all: false } });
  const ppcie = await rpc('CreateVm', pyDumps(createParams('all', await freePort(), { gpus: { attach_mode: 'all' } })));
  assert.deepEqual(ppcie, { status: 400, body: { error: 'Attaching all GPUs is not allowed' } });
  assert.equal(host.state.list().length, 1);
  // `stop ID` releases it.
  await rpc('StopVm', pyDumps({ id }));
  assert.equal(((await rpc('ListGpus')).body as { gpus: { is_free: boolean }[] }).gpus[0]?.is_free, true);
});
