import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { createVmmClient } from '../../src/vmm/client.ts';
import type { VmmClient } from '../../src/vmm/client.ts';
import { decodeMessage, encodeMessage, vmmMethods } from '../../src/vmm/codec.ts';
import type { WireMode } from '../../src/vmm/codec.ts';
import { startFakeVmm } from './fake-vmm.ts';
import { samples } from './samples.ts';
import { defer } from '../helpers/cleanup.ts';
import { waitUntil } from '../helpers/harness.ts';

for (const mode of ['protobuf', 'json'] as WireMode[]) {
  describe(`every RPC in ${mode} mode`, () => {
    test('requests carry the right method, encoding and fields; replies come back typed', async (t) => {
      const vmm = await startFakeVmm(t, (req) => ({ reply: samples[req.rpc].response }));
      const client = createVmmClient({ url: vmm.url, mode });
      defer(t, () => client.close());
      const s = samples;
      const id = s.StartVm.request.id as string;

      assert.deepEqual(await client.createVm(s.CreateVm.request), s.CreateVm.response);
      assert.deepEqual(await client.updateVm(s.UpdateVm.request), s.UpdateVm.response);
      assert.equal(await client.startVm(id), undefined);
      await client.stopVm(id);
      await client.shutdownVm(id);
      await client.removeVm(id);
      const status = await client.status(s.Status.request);
      assert.equal(status.total, 2);
      assert.equal(status.vms[0]?.configuration?.encrypted_env, '00ff10abcdef');
      assert.deepEqual(status.vms[1]?.events, []);
      assert.equal((await client.getInfo(id)).info?.events[0]?.timestamp, 1_754_550_000_123);
      assert.equal(await client.getComposeHash(s.GetComposeHash.request), 'ab'.repeat(32));
      assert.equal((await client.listImages())[0]?.name, 'dstack-0.5.11');
      assert.deepEqual((await client.getMeta()).kms.urls, ['https://127.0.0.1:8082']);
      assert.deepEqual(await client.version(), { version: '0.5.11', rev: '312dc605' });
      const key = await client.getAppEnvEncryptPubKey('0xC0FFEE00C0FFEE00C0FFEE00C0FFEE00C0FFEE00');
      assert.equal(key.public_key, '02'.repeat(33));

      const expectedOrder = [
        'CreateVm', 'UpdateVm', 'StartVm', 'StopVm', 'ShutdownVm', 'RemoveVm', 'Status',
        'GetInfo', 'GetComposeHash', 'ListImages', 'GetMeta', 'Version', 'GetAppEnvEncryptPubKey',
      ];
      assert.deepEqual(vmm.seen.map((r) => r.rpc), expectedOrder);
      for (const req of vmm.seen) {
        assert.equal(req.mode, mode, req.rpc);
        assert.equal(req.query, mode === 'json' ? 'json' : '', req.rpc);
        const spec = vmmMethods[req.rpc];
        assert.deepEqual(spec.requestSchema.parse(req.body), spec.requestSchema.parse(samples[req.rpc].request), req.rpc);
      }
      assert.equal(vmm.seen.at(-1)?.body.app_id, 'c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00');
    });

    test('an empty body for an Empty reply is accepted', async (t) => {
      const vmm = await startFakeVmm(t, () => ({ status: 200, body: '' }));
      const client = createVmmClient({ url: vmm.url, mode });
      defer(t, () => client.close());
      await client.stopVm('x');
      await client.removeVm('x');
      assert.equal(vmm.seen.length, 2);
    });

    test('a reply with fields missing gets proto3 defaults', async (t) => {
      const vmm = await startFakeVmm(t, () => ({ reply: { vms: [{ id: 'a' }] } }));
      const client = createVmmClient({ url: vmm.url, mode });
      defer(t, () => client.close());
      const status = await client.status();
      assert.deepEqual(status.vms[0]?.status, '');
      assert.equal(status.port_mapping_enabled, false);
      assert.deepEqual(vmm.seen[0]?.body, { ids: [], brief: false, keyword: '', page: 0, page_size: 0 });
    });
  });
}

describe('content type and auth', () => {
  test('protobuf mode sends application/octet-stream, JSON mode application/json', async (t) => {
    const vmm = await startFakeVmm(t, () => ({ reply: {} }));
    const binary = createVmmClient({ url: vmm.url });
    const json = createVmmClient({ url: vmm.url, mode: 'json' });
    defer(t, () => Promise.all([binary.close(), json.close()]));
    await binary.version();
    await json.version();
    assert.deepEqual(
      vmm.seen.map((r) => r.headers['content-type']),
      ['application/octet-stream', 'application/json'],
    );
  });

  test('the bearer token is read at call time, so a rotated token applies', async (t) => {
    const vmm = await startFakeVmm(t, () => ({ reply: {} }));
    const tokenFile = join(vmm.dir, 'token');
    await writeFile(tokenFile, 'first-token\n', { mode: 0o600 });
    const client: VmmClient = createVmmClient({ url: vmm.url, tokenFile });
    defer(t, () => client.close());
    await client.version();
    await writeFile(tokenFile, '  second-token  ');
    await client.version();
    assert.deepEqual(
      vmm.seen.map((r) => r.headers.authorization),
      ['Bearer first-token', 'Bearer second-token'],
    );
  });

  test('no token file, or an empty one, sends no Authorization header', async (t) => {
    const vmm = await startFakeVmm(t, () => ({ reply: {} }));
    const tokenFile = join(vmm.dir, 'token');
    await writeFile(tokenFile, '\n', { mode: 0o600 });
    const withEmpty = createVmmClient({ url: vmm.url, tokenFile });
    const without = createVmmClient({ url: vmm.url });
    defer(t, () => Promise.all([withEmpty.close(), without.close()]));
    await withEmpty.version();
    await without.version();
    assert.deepEqual(vmm.seen.map((r) => r.headers.authorization), [undefined, undefined]);
  });
});

// Issue 18: beside 5 000 VMs one Status took 0.9 s of CPU to decode in one piece, and every file
// event waited behind it; in protobuf the VMs are decoded a slice at a time (100, with the event
// loop let go between), which must give what one whole decode gives.
test('a Status of many VMs, decoded a slice at a time, is what one whole decode gives', async (t) => {
  const [first] = samples.Status.response.vms as Array<Record<string, unknown>>;
  const vms = Array.from({ length: 250 }, (_, i) => ({ ...first, id: `vm-${i}`, name: `app-${i}` }));
  const reply = { ...samples.Status.response, vms, total: vms.length };
  const vmm = await startFakeVmm(t, () => ({ reply }));
  const client = createVmmClient({ url: vmm.url, mode: 'protobuf' });
  defer(t, () => client.close());
  const whole = vmmMethods.Status.responseSchema.parse(decodeMessage('vmm.StatusResponse', encodeMessage('vmm.StatusResponse', reply, 'protobuf'), 'protobuf'));
  const got = await client.status({});
  assert.equal(got.vms.length, 250);
  assert.deepEqual(got, whole);
});

// A resync's Status lets an event pass or a changed app's reconcile go first between slices.
test("a Status decoded a slice at a time waits for the caller's pace between slices", async (t) => {
  const [first] = samples.Status.response.vms as Array<Record<string, unknown>>;
  const vms = Array.from({ length: 250 }, (_, i) => ({ ...first, id: `vm-${i}`, name: `app-${i}` }));
  const vmm = await startFakeVmm(t, () => ({ reply: { ...samples.Status.response, vms, total: vms.length } }));
  const client = createVmmClient({ url: vmm.url, mode: 'protobuf' });
  defer(t, () => client.close());
  let paces = 0;
  let release = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  const reply = client.status({}, { pace: () => (++paces === 1 ? held : Promise.resolve()) });
  await waitUntil(() => paces === 1, 'the first pace asked for', 5000);
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  assert.equal(paces, 1, 'no slice decoded while the pace holds');
  release();
  assert.equal((await reply).vms.length, 250);
  assert.equal(paces, 2, 'one pace between each two of the three slices');
});

test('a Status whose VM list cannot be decoded says so', async (t) => {
  // Field 1 (vms), length 2, with bytes that are no VmInfo (a truncated varint).
  const vmm = await startFakeVmm(t, () => ({ status: 200, body: Buffer.from([0x0a, 0x02, 0x08, 0xff]) }));
  const client = createVmmClient({ url: vmm.url, mode: 'protobuf' });
  defer(t, () => client.close());
  await assert.rejects(client.status({}), (err: Error & { code?: string }) => err.code === 'VMM_PROTOCOL' && /Status: unreadable reply/.test(err.message));
});
