// A VM's log as dstack-vmm serves it, for error messages (the KMS CVM at init, the gateway CVM in
// Tier 2). Plain HTTP on the VMM's own address, outside prpc.
import { Agent, request } from 'undici';
import { describeError } from '../errors.ts';
import { tokenHeaders } from './token-file.ts';
import { parseVmmAddress } from './transport.ts';

// An error message must not wait on the VMM for long.
const LOG_TIMEOUT_MS = 5_000;

// The last `lines` lines of a VM's serial log (`GET /logs?id=` on the VMM, docs/dstack.md §1.1), for an
// error message: never throws, a failure to read becomes a line saying so.
export async function readVmLogTail(vmmUrl: string, tokenFile: string | undefined, id: string, lines = 20): Promise<string[]> {
  let agent: Agent | undefined;
  try {
    const address = parseVmmAddress(vmmUrl);
    agent = new Agent(address.socketPath === undefined ? {} : { connect: { socketPath: address.socketPath } });
    const headers = tokenFile === undefined || tokenFile === '' ? {} : await tokenHeaders('GET /logs', tokenFile);
    const query = new URLSearchParams({ id, follow: 'false', ansi: 'false', lines: String(lines) });
    const res = await request(`${address.baseUrl}/logs?${query}`, {
      dispatcher: agent,
      headers,
      signal: AbortSignal.timeout(LOG_TIMEOUT_MS),
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) return [`(the VMM answered HTTP ${res.statusCode} for the log of VM ${id}: ${text.trim().slice(0, 200)})`];
    return text.split('\n').filter((line) => line.trim() !== '').slice(-lines);
  } catch (err) {
    return [`(could not read the log of VM ${id}: ${describeError(err)})`];
  } finally {
    await agent?.close();
  }
}
