import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'undici';
import { decodeMessage, encodeMessage, vmmMethods } from '../../src/vmm/codec.ts';
import { encodeStatusInSlices } from '../../src/sim/vmm-server.ts';
import { appCompose, startTestHost } from './fixtures.ts';
import { VmmState } from '../../src/sim/vmm-state.ts';
import { queryStatus } from '../../src/sim/vmm-queries.ts';
import { DEFAULT_SIM_IMAGE } from '../../src/sim/vmm-config.ts';
import { StatusRequestSchema, VmConfigurationSchema } from '../../src/vmm/messages.ts';
import { createManualClock } from '../helpers/manual-clock.ts';
import { defer } from '../helpers/cleanup.ts';

const TOKEN = 'correct-horse';

// Raw HTTP to the simulated VMM's socket, so status codes, headers and bodies are seen as sent.
async function startRaw(t: TestContext, token?: string) {
  const host = await startTestHost(t, token === undefined ? {} : { token });
  const agent = new Agent({ connect: { socketPath: host.socketPath } });
  defer(t, () => agent.close());
  const send = async (path: string, init: { method?: string; headers?: Record<string, string>; body?: Buffer | string } = {}) => {
    const res = await request(`http://localhost${path}`, { dispatcher: agent, method: 'POST', ...init });
    return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
  };
  return { host, send };
}

const bearer = { authorization: `Bearer ${TOKEN}` };

test('401 with an empty body and the Basic realm when the token is missing or wrong', async (t) => {
  const { send } = await startRaw(t, TOKEN);
  const wrong: Record<string, string>[] = [{}, { authorization: 'Bearer nope' }, { 'x-admin-token': 'nope' }, { authorization: `bearer ${TOKEN}` }];
  for (const headers of wrong) {
    const res = await send('/prpc/Version?json', { headers });
    assert.equal(res.status, 401, JSON.stringify(headers));
    assert.equal(res.body.length, 0);
    assert.equal(res.headers['www-authenticate'], 'Basic realm="dstack-vmm API"');
    assert.equal(typeof res.headers['x-app-version'], 'string');
  }
  assert.equal((await send('/logs?id=x', { method: 'GET' })).status, 401);
});

test('accepted credentials: X-Admin-Token, Bearer (trimmed), Basic user:token or token:, GET ?token=', async (t) => {
  const { send } = await startRaw(t, TOKEN);
  const basic = (s: string) => ({ authorization: `Basic ${Buffer.from(s).toString('base64')}` });
  for (const headers of [{ 'x-admin-token': TOKEN }, { authorization: `Bearer  ${TOKEN} ` }, basic(`admin:${TOKEN}`), basic(`${TOKEN}:`)]) {
    assert.equal((await send('/prpc/Version?json', { headers })).status, 200, JSON.stringify(headers));
  }
  assert.equal((await send(`/prpc/Version?token=${TOKEN}`, { method: 'GET' })).status, 200);
  // A wrong Bearer header is final: no fallback to ?token=.
  assert.equal((await send(`/prpc/Version?token=${TOKEN}`, { method: 'GET', headers: { authorization: 'Bearer x' } })).status, 401);
  // ?token= counts for GET only.
  assert.equal((await send(`/prpc/Version?json&token=${TOKEN}`)).status, 401);
});

test('400 bodies: pretty {"error"} in JSON mode, prpc.PrpcError in protobuf mode', async (t) => {
  const { send } = await startRaw(t);
  const id = encodeMessage('vmm.Id', { id: 'missing' }, 'protobuf');
  const json = await send('/prpc/RemoveVm?json', { body: '{"id":"missing"}' });
  assert.equal(json.status, 400);
  assert.equal(json.headers['content-type'], 'application/json');
  assert.equal(json.body.toString(), '{\n  "error": "Failed to remove VM: VM not found"\n}');
  const byType = await send('/prpc/RemoveVm', { headers: { 'content-type': 'application/json' }, body: '{"id":"missing"}' });
  assert.equal(JSON.parse(byType.body.toString()).error, 'Failed to remove VM: VM not found');
  const binary = await send('/prpc/RemoveVm', { headers: { 'content-type': 'application/octet-stream' }, body: id });
  assert.equal(binary.status, 400);
  assert.equal(binary.headers['content-type'], 'application/octet-stream');
  assert.deepEqual(decodeMessage('prpc.PrpcError', binary.body, 'protobuf'), { message: 'Failed to remove VM: VM not found' });
});

test('routing: bare names and the legacy Teepod. prefix only; unknown methods are 400', async (t) => {
  const { send } = await startRaw(t);
  const version = await send('/prpc/Teepod.Version?json');
  assert.equal(version.status, 200);
  assert.equal(version.headers['x-accel-buffering'], 'no');
  assert.deepEqual(JSON.parse(version.body.toString()), { version: '0.5.11', rev: 'simulated' });
  const vmmPrefix = await send('/prpc/Vmm.Version?json');
  assert.equal(vmmPrefix.status, 400);
  assert.equal(JSON.parse(vmmPrefix.body.toString()).error, 'Method not found: Vmm.Version');
  assert.equal((await send('/nope', { method: 'GET' })).status, 404);
});

test('GET carries the request in the query string and always answers JSON', async (t) => {
  const { send } = await startRaw(t);
  const created = await send('/prpc/CreateVm?json', {
    body: JSON.stringify({ name: 'q', image: 'dstack-0.5.11', compose_file: '{"manifest_version":2,"name":"q","runner":"bash"}', stopped: true }),
  });
  const { id } = JSON.parse(created.body.toString()) as { id: string };
  const status = await send(`/prpc/Status?ids=${id}&brief=true`, { method: 'GET' });
  assert.equal(status.headers['content-type'], 'application/json');
  const parsed = JSON.parse(status.body.toString()) as { vms: { id: string; configuration?: unknown }[]; total: number };
  assert.deepEqual([parsed.total, parsed.vms[0]?.id, parsed.vms[0]?.configuration], [1, id, undefined]);
  assert.equal((await send('/prpc/Status?ids=other', { method: 'GET' })).body.toString().includes('"total":0'), true);
});

test('a Status reply encoded in slices is the body one piece would be, and other work runs between its slices', async () => {
  const state = new VmmState({ clock: createManualClock(), bootDelayMs: 20, requestAppKeys: async () => ({ isAllowed: true, reason: '' }) });
  const port = (i: number) => ({ protocol: 'tcp', host_port: 20_000 + i, vm_port: 80, host_address: '127.0.0.1' });
  for (let i = 0; i < 250; i++) {
    state.createVm(VmConfigurationSchema.parse({ name: `app-${i}`, image: DEFAULT_SIM_IMAGE.name, compose_file: appCompose(`app-${i}`), ports: [port(i)] }));
  }
  const all = queryStatus(state, StatusRequestSchema.parse({}));
  for (const count of [0, 1, 100, 250]) {
    const reply = { ...all, vms: all.vms.slice(0, count), total: count };
    const whole = encodeMessage('vmm.StatusResponse', vmmMethods.Status.responseSchema.parse(reply), 'protobuf');
    let ranBetween = false;
    setImmediate(() => (ranBetween = true));
    const sliced = await encodeStatusInSlices(reply);
    assert.equal(sliced.toString('hex'), whole.toString('hex'), `${count} VMs`);
    // Only a reply of more than one slice lets go of the event loop before it is done.
    assert.equal(ranBetween, count > 100, `${count} VMs: other work ran while it was encoded`);
  }
});

test('Empty replies are null in JSON mode and zero bytes in protobuf mode', async (t) => {
  const { send } = await startRaw(t);
  const created = await send('/prpc/CreateVm?json', {
    body: JSON.stringify({ name: 'e', image: 'dstack-0.5.11', compose_file: '{"manifest_version":2,"name":"e","runner":"bash"}', stopped: true }),
  });
  const { id } = JSON.parse(created.body.toString()) as { id: string };
  const json = await send('/prpc/StopVm?json', { body: JSON.stringify({ id }) });
  assert.deepEqual([json.status, json.body.toString()], [200, 'null']);
  const binary = await send('/prpc/StopVm', { body: encodeMessage('vmm.Id', { id }, 'protobuf') });
  assert.deepEqual([binary.status, binary.body.length], [200, 0]);
});

test('a body that is not the request message is a 400 in the request mode', async (t) => {
  const { send } = await startRaw(t);
  const res = await send('/prpc/CreateVm?json', { body: '{"name": 5}' });
  assert.equal(res.status, 400);
  assert.match(JSON.parse(res.body.toString()).error, /name/);
});

test('/logs?id= prints the guest events as text, the last `lines` of them, on the serial channel; unknown ids are 404, unknown channels 400', async (t) => {
  const { host, send } = await startRaw(t, TOKEN);
  const created = await send('/prpc/CreateVm?json', {
    headers: bearer,
    body: JSON.stringify({ name: 'logs', image: 'dstack-0.5.11', compose_file: '{"manifest_version":2,"name":"l","runner":"bash"}' }),
  });
  const { id } = JSON.parse(created.body.toString()) as { id: string };
  await host.state.waitFor((vms) => vms[0]?.boot_progress === 'done');
  const logs = await send(`/logs?id=${id}&follow=false&ansi=false&lines=20`, { method: 'GET', headers: bearer });
  assert.equal(logs.status, 200);
  assert.match(logs.body.toString(), /boot\.progress: running main script\n.*boot\.progress: done\n$/);
  const missing = await send('/logs?id=nope', { method: 'GET', headers: bearer });
  assert.deepEqual([missing.status, missing.body.toString()], [404, 'VM not found']);
  const all = (await send(`/logs?id=${id}`, { method: 'GET', headers: bearer })).body.toString().split('\n');
  const tail = await send(`/logs?id=${id}&lines=2`, { method: 'GET', headers: bearer });
  assert.deepEqual(tail.body.toString().split('\n'), all.slice(-3), 'the last two lines (and the final newline)');
  assert.match(all[0]!, /^\[sim\] logs \(/, 'with no `lines`, the whole (short) log');
  const stdout = await send(`/logs?id=${id}&ch=stdout`, { method: 'GET', headers: bearer });
  assert.deepEqual([stdout.status, stdout.body.toString()], [200, '']);
  const bad = await send(`/logs?id=${id}&ch=console`, { method: 'GET', headers: bearer });
  assert.deepEqual([bad.status, bad.body.toString()], [400, 'Unknown channel console']);
});
