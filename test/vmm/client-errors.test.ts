import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { SupervisorError } from '../../src/errors.ts';
import { createVmmClient } from '../../src/vmm/client.ts';
import type { VmmClientOptions } from '../../src/vmm/client.ts';
import { VmmError } from '../../src/vmm/errors.ts';
import { startFakeVmm } from './fake-vmm.ts';
import type { FakeReply } from './fake-vmm.ts';
import { defer } from '../helpers/cleanup.ts';

// A client against a fake that answers every call with `reply`.
async function clientFor(t: TestContext, reply: FakeReply, options: Partial<VmmClientOptions> = {}) {
  const vmm = await startFakeVmm(t, () => reply);
  const client = createVmmClient({ url: vmm.url, ...options });
  defer(t, () => client.close());
  return { vmm, client };
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<VmmError> {
  const err = await promise.then(
    () => assert.fail(`expected ${code}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof VmmError, String(err));
  assert.ok(err instanceof SupervisorError);
  assert.equal(err.code, code, err.message);
  return err;
}

describe('400 from the VMM is VMM_RPC with its own message', () => {
  test('protobuf mode, prpc.PrpcError body', async (t) => {
    const { client } = await clientFor(t, { error: 'Port mapping is not allowed for tcp:30000' });
    const err = await rejectsWith(client.createVm({ name: 'shop' }), 'VMM_RPC');
    assert.equal(err.vmmMessage, 'Port mapping is not allowed for tcp:30000');
    assert.equal(err.method, 'CreateVm');
    assert.equal(err.message, 'dstack-vmm CreateVm failed: Port mapping is not allowed for tcp:30000');
  });

  test('JSON mode, {"error": ...} body', async (t) => {
    const { client } = await clientFor(t, { error: 'VM not found' }, { mode: 'json' });
    const err = await rejectsWith(client.removeVm('nope'), 'VMM_RPC');
    assert.equal(err.vmmMessage, 'VM not found');
    assert.match(err.message, /^dstack-vmm RemoveVm failed: VM not found$/);
  });

  test('a 400 body that is neither form is VMM_PROTOCOL', async (t) => {
    const { client } = await clientFor(t, { status: 400, body: '{"oops":1}' }, { mode: 'json' });
    await rejectsWith(client.version(), 'VMM_PROTOCOL');
  });
});

describe('401 is VMM_UNAUTHORIZED', () => {
  test('names the URL and the token file', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'vmm-token-'));
    defer(t, () => rm(dir, { recursive: true, force: true }));
    const tokenFile = join(dir, 'vmm-token');
    await writeFile(tokenFile, 'wrong', { mode: 0o600 });
    const { vmm, client } = await clientFor(t, { status: 401 }, { tokenFile });
    const err = await rejectsWith(client.status(), 'VMM_UNAUTHORIZED');
    assert.ok(err.message.includes(`dstack-vmm at ${vmm.url} rejected the token from ${tokenFile}`), err.message);
  });

  test('says that no token is configured when there is no token file', async (t) => {
    const { client } = await clientFor(t, { status: 401 });
    const err = await rejectsWith(client.status(), 'VMM_UNAUTHORIZED');
    assert.match(err.message, /none is configured/);
  });
});

test('an unreadable token file is VMM_TOKEN_FILE and nothing is sent', async (t) => {
  const { vmm, client } = await clientFor(t, { reply: {} }, { tokenFile: '/proc/self/mem' });
  const err = await rejectsWith(client.version(), 'VMM_TOKEN_FILE');
  assert.match(err.message, /\/proc\/self\/mem/);
  assert.equal(vmm.seen.length, 0);
});

test('a missing token file sends no token (a VMM with [auth] off)', async (t) => {
  const { vmm, client } = await clientFor(t, { reply: {} }, { tokenFile: '/nonexistent/vmm-token' });
  await client.version();
  assert.equal(vmm.seen.length, 1);
  assert.equal(vmm.seen[0]?.headers.authorization, undefined);
});

describe('no VMM listening is VMM_UNREACHABLE', () => {
  test('missing unix socket', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'vmm-missing-'));
    defer(t, () => rm(dir, { recursive: true, force: true }));
    const url = `unix:${join(dir, 'vmm.sock')}`;
    const client = createVmmClient({ url });
    defer(t, () => client.close());
    const err = await rejectsWith(client.version(), 'VMM_UNREACHABLE');
    assert.ok(err.message.startsWith(`dstack-vmm is not reachable at ${url}`), err.message);
  });

  test('refused TCP connection', async (t) => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const address = probe.address();
    assert.ok(address !== null && typeof address === 'object');
    await new Promise((resolve) => probe.close(resolve));
    const client = createVmmClient({ url: `tcp:127.0.0.1:${address.port}` });
    defer(t, () => client.close());
    await rejectsWith(client.version(), 'VMM_UNREACHABLE');
  });
});

describe('no answer in time is VMM_TIMEOUT', () => {
  test('client default timeout', async (t) => {
    const { client } = await clientFor(t, 'hang', { timeoutMs: 100 });
    const err = await rejectsWith(client.status(), 'VMM_TIMEOUT');
    assert.match(err.message, /did not answer Status within 100 ms/);
  });

  test('per-call override', async (t) => {
    const { client } = await clientFor(t, 'hang');
    await rejectsWith(client.getInfo('x', { timeoutMs: 50 }), 'VMM_TIMEOUT');
  });
});

describe('anything else is VMM_PROTOCOL', () => {
  test('unexpected HTTP status', async (t) => {
    const { client } = await clientFor(t, { status: 500, body: 'internal' });
    const err = await rejectsWith(client.version(), 'VMM_PROTOCOL');
    assert.match(err.message, /unexpected HTTP 500 .*internal/);
  });

  test('a 200 body that does not decode', async (t) => {
    const { client } = await clientFor(t, { status: 200, body: 'not json' }, { mode: 'json' });
    await rejectsWith(client.version(), 'VMM_PROTOCOL');
  });

  test('an invalid request is refused before sending', async (t) => {
    const { vmm, client } = await clientFor(t, { reply: {} });
    await rejectsWith(client.createVm({ name: 'x', encrypted_env: '0xabcd' }), 'VMM_PROTOCOL');
    assert.equal(vmm.seen.length, 0);
  });

  test('an invalid request is named in one line, not a zod JSON dump (issue 13 item 5)', async (t) => {
    const { vmm, client } = await clientFor(t, { reply: {} });
    const err = await rejectsWith(client.createVm({ name: 'x', memory: 9999999 * 1024, vcpu: -1 }), 'VMM_PROTOCOL');
    assert.match(err.message, /refusing to send an invalid request: vcpu: .* \(and 1 more\)$/);
    assert.doesNotMatch(err.message, /[{}\n]|"code"/);
    assert.equal(vmm.seen.length, 0);
  });
});
