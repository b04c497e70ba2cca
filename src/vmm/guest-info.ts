// A CVM's measurement as its guest agent publishes it, through dstack-vmm's proxied guest API
// (`POST /guest/Info`, dstack/vmm/src/guest_api_service.rs): GuestInfo.tcb_info is a JSON string
// holding mr_aggregated, os_image_hash and device_id when the app-compose sets `public_tcbinfo`
// (the KMS CVM's does). Plain HTTP on the VMM's own address, outside prpc.
import { Agent, request } from 'undici';
import * as z from 'zod';
import { SupervisorError } from '../errors.ts';
import { tokenHeaders } from './token-file.ts';
import { parseVmmAddress } from './transport.ts';

// What `kms.mrAggregated` and `osImages` in an auth-config.json compare against.
export type CvmMeasurement = { mrAggregated: string; osImageHash: string; deviceId: string };

const TcbInfoSchema = z.looseObject({ mr_aggregated: z.string().regex(/^[0-9a-f]{64}$/i), os_image_hash: z.string(), device_id: z.string().default('') });

// The measurement of VM `id`; throws VMM_GUEST_INFO with the reason when it cannot be read.
export async function readCvmMeasurement(vmmUrl: string, tokenFile: string | undefined, id: string): Promise<CvmMeasurement> {
  const address = parseVmmAddress(vmmUrl);
  const agent = new Agent(address.socketPath === undefined ? {} : { connect: { socketPath: address.socketPath } });
  try {
    const headers = tokenFile === undefined || tokenFile === '' ? {} : await tokenHeaders('POST /guest/Info', tokenFile);
    const res = await request(`${address.baseUrl}/guest/Info?json`, {
      dispatcher: agent,
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ id }),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw guestInfoError(id, `dstack-vmm answered HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
    const tcbInfo = (JSON.parse(text) as { tcb_info?: unknown }).tcb_info;
    if (typeof tcbInfo !== 'string' || tcbInfo === '') throw guestInfoError(id, 'its guest publishes no tcb_info (public_tcbinfo is off in its app-compose)');
    const parsed = TcbInfoSchema.parse(JSON.parse(tcbInfo));
    return { mrAggregated: parsed.mr_aggregated.toLowerCase(), osImageHash: parsed.os_image_hash.toLowerCase(), deviceId: parsed.device_id.toLowerCase() };
  } finally {
    await agent.close();
  }
}

function guestInfoError(id: string, why: string): SupervisorError {
  return new SupervisorError('VMM_GUEST_INFO', `the measurement of VM ${id} cannot be read through dstack-vmm's /guest/Info: ${why}`);
}
