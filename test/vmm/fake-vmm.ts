// A minimal dstack-vmm stand-in for client tests: a real node:http server on a unix socket in the
// test's temp dir, speaking prpc through the same codec as the client. Each test scripts replies.
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { decodeMessage, encodeError, encodeMessage, isJsonMode, isVmmMethod, vmmMethods } from '../../src/vmm/codec.ts';
import type { VmmMethod, WireMode, WireObject } from '../../src/vmm/codec.ts';
import { defer } from '../helpers/cleanup.ts';

// One request as the fake saw it, already decoded.
export type SeenRequest = {
  rpc: VmmMethod;
  query: string;
  headers: IncomingHttpHeaders;
  mode: WireMode;
  body: WireObject;
};

// What the fake answers: a message (200), a VMM error (400), raw bytes, or no answer at all.
export type FakeReply =
  | { reply: WireObject }
  | { error: string }
  | { status: number; body?: string | Buffer }
  | 'hang';

// A running fake with the requests it received.
export type FakeVmm = { url: string; dir: string; seen: SeenRequest[] };

// Start the fake for one test; it is closed and its temp dir removed when the test ends.
export async function startFakeVmm(t: TestContext, answer: (req: SeenRequest) => FakeReply): Promise<FakeVmm> {
  const dir = await mkdtemp(join(tmpdir(), 'vmm-client-'));
  const socketPath = join(dir, 'vmm.sock');
  const seen: SeenRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const [path = '', query = ''] = (req.url ?? '').split('?', 2);
      const rpc = path.replace(/^\/prpc\//, '');
      const mode: WireMode = isJsonMode({ method: req.method ?? '', query, contentType: req.headers['content-type'] })
        ? 'json'
        : 'protobuf';
      if (!isVmmMethod(rpc)) {
        send(res, mode, 400, encodeError(`Method not found: ${rpc}`, mode));
        return;
      }
      const seenReq = { rpc, query, headers: req.headers, mode, body: decodeMessage(vmmMethods[rpc].request, Buffer.concat(chunks), mode) };
      seen.push(seenReq);
      const out = answer(seenReq);
      if (out === 'hang') return;
      if ('reply' in out) send(res, mode, 200, encodeMessage(vmmMethods[rpc].response, out.reply, mode));
      else if ('error' in out) send(res, mode, 400, encodeError(out.error, mode));
      else send(res, mode, out.status, Buffer.from(out.body ?? ''));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, resolve);
  });
  defer(t, async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });
  return { url: `unix:${socketPath}`, dir, seen };
}

// Content types as ra-rpc sets them.
function send(res: ServerResponse, mode: WireMode, status: number, body: Buffer): void {
  const contentType = mode === 'json' ? 'application/json' : 'application/octet-stream';
  res.writeHead(status, { 'content-type': contentType, 'content-length': body.length });
  res.end(body);
}
