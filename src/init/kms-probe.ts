// Is the KMS really up? Boot `done` does not prove it bootstrapped (docs/dstack.md §5.6): only an
// HTTPS answer on its RPC port does. `/health` says the main service runs; `GetMeta` hands over
// the CA and the k256 public key that signs env-encryption keys. TLS verification is off: the
// KMS CA was born a moment ago and its leaf names only the bootstrap domain (docs/dstack.md §5.6).
import { Agent, request } from 'undici';
import * as z from 'zod';
import { describeError } from '../errors.ts';

// What GetMeta told us.
export type KmsMeta = { caCert: string; k256Pubkey: string };

// Ask the KMS at `baseUrl` (https://127.0.0.1:<port>); throws with the reason while it is not up.
export type KmsProbe = (baseUrl: string) => Promise<KmsMeta>;

// A probe and the connection pool behind it.
export type KmsProber = { probe: KmsProbe; close: () => Promise<void> };

const GetMetaSchema = z.looseObject({
  ca_cert: z.string(),
  // bytes on the wire: lowercase hex; SEC1, compressed (33 bytes) or not (65).
  k256_pubkey: z.string().regex(/^([0-9a-f]{66}|[0-9a-f]{130})$/i, 'expected a SEC1 secp256k1 public key in hex'),
});

const PROBE_TIMEOUT_MS = 5_000;

// The HTTPS probe used by init.
export function createKmsProber(): KmsProber {
  const agent = new Agent({ connect: { rejectUnauthorized: false }, headersTimeout: PROBE_TIMEOUT_MS, bodyTimeout: PROBE_TIMEOUT_MS });
  const probe: KmsProbe = async (baseUrl) => {
    if (!baseUrl.startsWith('https://')) throw new Error(`${baseUrl} is not an https:// URL`);
    const call = async (path: string, init: { method: 'GET' | 'POST'; body?: string }): Promise<string> => {
      const res = await request(`${baseUrl}${path}`, {
        dispatcher: agent,
        method: init.method,
        headers: init.body === undefined ? {} : { 'content-type': 'application/json' },
        body: init.body,
        signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
      });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`${init.method} ${path} answered HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
      return text;
    };
    const health = await call('/health', { method: 'GET' });
    if (health.trim() !== 'OK') throw new Error(`GET /health answered "${health.slice(0, 80)}", not OK`);
    const raw = await call('/prpc/GetMeta?json', { method: 'POST', body: '{}' });
    let meta: z.infer<typeof GetMetaSchema>;
    try {
      meta = GetMetaSchema.parse(JSON.parse(raw));
    } catch (err) {
      throw new Error(`GetMeta answered something unexpected (${describeError(err)})`, { cause: err });
    }
    return { caCert: meta.ca_cert, k256Pubkey: meta.k256_pubkey.toLowerCase() };
  };
  return { probe, close: () => agent.close() };
}
