// The simulated KMS in onboarding mode and its side of the key handover (upstream
// kms/src/onboard_service.rs, kms/src/main.rs `run_onboard_service`). A KMS with no keys whose
// kms.toml has `[core.onboard] enabled = true` and an empty `auto_bootstrap_domain` serves the
// Onboard service in plain HTTP on its RPC port: `/health`, `GetAttestationInfo`, `Onboard`,
// `Finish` and `GET /finish`. `Onboard {source_url, domain}` takes the keys from the source KMS:
//   1. `GetTempCaCert` over TLS without verification, keeping the source's certificate, which must
//      carry an attestation;
//   2. an RA-TLS client certificate for itself, signed with the temp CA key it was handed;
//   3. the source's attestation judged by its OWN webhook (`/bootAuth/kms`): a KMS onboards only
//      from a KMS its operator allowed;
//   4. `GetKmsKey` over mutual TLS; the source judges the client's attestation by its webhook.
// Errors read as upstream's anyhow chains do (`{:#}`), so init can tell the refusals apart.
// Where it differs: no `Bootstrap` (init's KMS bootstraps itself with auto_bootstrap_domain) and
// no domain check on the RPC certificate (it always names 10.0.2.2 and 127.0.0.1).
import { request as httpsRequest } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { parse as parseToml } from 'smol-toml';
import { askKmsAllowed, type SimAttestation } from './kms-attestation.ts';
import { attestationIn, selfSignedCa, signedLeaf } from './kms-certs.ts';
import type { KmsRootKeys } from './kms-root.ts';
import { readBody } from './http-server.ts';

// How a KMS CVM starts, from the kms.toml its app-compose carries: bootstrap its own keys, or wait
// to be onboarded. A compose without kms.toml is taken as init's single-node KMS.
export type KmsStartMode = 'bootstrap' | 'onboard' | 'disabled';

// The start mode of a KMS CVM that has no keys yet.
export function kmsStartMode(composeFile: string): KmsStartMode {
  const toml = kmsTomlIn(composeFile);
  if (toml === undefined) return 'bootstrap';
  // Keys left out take upstream's defaults (dstack/kms/kms.toml): enabled, no bootstrap domain.
  const onboard = (parseToml(toml)['core'] as { onboard?: { enabled?: unknown; auto_bootstrap_domain?: unknown } } | undefined)?.onboard;
  if (onboard?.enabled === false) return 'disabled';
  return typeof onboard?.auto_bootstrap_domain === 'string' && onboard.auto_bootstrap_domain !== '' ? 'bootstrap' : 'onboard';
}

function kmsTomlIn(composeFile: string): string | undefined {
  try {
    const script: unknown = (JSON.parse(composeFile) as { init_script?: unknown }).init_script;
    return typeof script === 'string' ? /<<'DSTACK_KMS_TOML'\n([\s\S]*?)\nDSTACK_KMS_TOML/.exec(script)?.[1] : undefined;
  } catch {
    return undefined;
  }
}

// What the onboard service works with: this KMS's attestation, its webhook, and what to do with
// keys it received (store them; the k256 public key comes back) or on Finish.
export type OnboardContext = {
  attestation: () => SimAttestation;
  authUrl: string;
  hasKeys: () => boolean;
  store: (keys: KmsRootKeys) => string;
  finish: () => void;
};

// Serve one request of the Onboard service (plain HTTP). Methods come bare or as `Onboard.<name>`.
export async function answerOnboard(req: IncomingMessage, res: ServerResponse, context: OnboardContext): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const body = (await readBody(req)).toString('utf8');
  if (url.pathname === '/health') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('OK');
  if (url.pathname === '/finish' && req.method === 'GET') {
    res.once('finish', context.finish);
    return void res.writeHead(200, { 'content-type': 'text/plain' }).end('OK');
  }
  const method = url.pathname.startsWith('/prpc/') ? url.pathname.slice('/prpc/'.length).replace(/^Onboard\./, '') : undefined;
  if (method === undefined) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found');
  try {
    const reply = await callOnboard(method, body, context, res);
    sendJson(res, 200, reply);
  } catch (err) {
    sendJson(res, 400, { error: err instanceof Error ? err.message : String(err) });
  }
}

async function callOnboard(method: string, body: string, context: OnboardContext, res: ServerResponse): Promise<unknown> {
  if (method === 'GetAttestationInfo') {
    const self = context.attestation();
    return { device_id: self.deviceId, mr_aggregated: self.mrAggregated, os_image_hash: self.osImageHash, tee_variant: 'dstack-tdx', site_name: '', eth_rpc_url: '', kms_contract_address: '', ppid: self.deviceId };
  }
  if (method === 'Finish') {
    res.once('finish', context.finish);
    return {};
  }
  if (method !== 'Onboard') throw new Error(`Method not found: ${method}`);
  const request = JSON.parse(body === '' ? '{}' : body) as { source_url?: unknown; domain?: unknown };
  if (typeof request.domain !== 'string' || request.domain === '') throw new Error('domain must be a non-empty ASCII DNS name of at most 253 bytes');
  if (context.hasKeys()) throw new Error('KMS has already been onboarded');
  const source = typeof request.source_url === 'string' ? request.source_url.replace(/\/+$/, '') : '';
  const prpc = source.endsWith('/prpc') ? source : `${source}/prpc`;
  let keys: KmsRootKeys;
  try {
    keys = await fetchKmsKeys(prpc, context);
  } catch (err) {
    throw new Error(`Failed to onboard: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  return { k256_pubkey: context.store(keys) };
}

// Steps 1-4 of the module comment.
async function fetchKmsKeys(prpc: string, context: OnboardContext): Promise<KmsRootKeys> {
  const temp = await call(prpc, 'GetTempCaCert', {});
  const sourceAttestation = temp.peerDer === undefined ? undefined : attestationIn(temp.peerDer);
  if (sourceAttestation === undefined) throw new Error('Source KMS certificate does not contain attestation');
  const tempCa = temp.body as { temp_ca_cert?: unknown; temp_ca_key?: unknown };
  if (typeof tempCa.temp_ca_cert !== 'string' || typeof tempCa.temp_ca_key !== 'string') throw new Error('GetTempCaCert: no temp CA in the answer');
  const client = signedLeaf({ certPem: tempCa.temp_ca_cert, keyPem: tempCa.temp_ca_key }, 'RA-TLS TEMP Cert', { attestation: context.attestation() });
  const verdict = await askKmsAllowed(context.authUrl, sourceAttestation);
  if (!verdict.isAllowed) throw new Error(`Source KMS is not allowed for onboarding: boot denied: ${verdict.reason}`);
  const handed = (await call(prpc, 'GetKmsKey', { vm_config: '' }, client)).body as { temp_ca_key?: unknown; keys?: { ca_key?: unknown; k256_key?: unknown }[] };
  const root = handed.keys?.length === 1 ? handed.keys[0] : undefined;
  if (typeof root?.ca_key !== 'string' || typeof root.k256_key !== 'string' || typeof handed.temp_ca_key !== 'string') throw new Error('Invalid keys');
  return { k256Hex: root.k256_key, caKeyPem: root.ca_key, tempCaKeyPem: handed.temp_ca_key };
}

// One JSON-mode prpc call to the source KMS (TLS unverified, as upstream's `tls_no_check`): its
// answer and the certificate it presented. A refusal throws with the source's own error text.
async function call(prpc: string, method: string, body: unknown, clientCert?: { keyPem: string; certPem: string }): Promise<{ body: unknown; peerDer: Buffer | undefined }> {
  const url = new URL(`${prpc}/KMS.${method}?json`);
  if (url.protocol !== 'https:') throw new Error(`source_url ${prpc} is not https`);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      { method: 'POST', agent: false, rejectUnauthorized: false, headers: { 'content-type': 'application/json' }, timeout: 10_000, ...(clientCert === undefined ? {} : { key: clientCert.keyPem, cert: clientCert.certPem }) },
      (res) => {
        const peer = (res.socket as TLSSocket).getPeerCertificate();
        const peerDer = peer.raw instanceof Buffer ? peer.raw : undefined;
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            return reject(new Error(`${method}: the source KMS answered HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
          }
          const error = (parsed as { error?: unknown } | null)?.error;
          if (res.statusCode !== 200) return reject(new Error(`${method} failed: ${typeof error === 'string' ? error : text.slice(0, 200)}`));
          resolve({ body: parsed, peerDer });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method}: no answer from ${url.origin} within 10 s`)));
    req.on('error', (err) => reject(new Error(`${method}: ${url.origin}: ${err.message}`, { cause: err })));
    req.end(JSON.stringify(body));
  });
}

// The certificates a KMS serves with, made from its root keys: its CA, the temp CA, and the RPC
// leaf for the bootstrap domain and the host's loopback, carrying the KMS's attestation.
export type KmsIdentity = { ca: { keyPem: string; certPem: string }; tempCa: { keyPem: string; certPem: string }; rpc: { keyPem: string; certPem: string } };

// Issue the identity of a KMS holding `keys`, attested as `attestation`.
export function issueKmsIdentity(keys: KmsRootKeys, attestation: SimAttestation): KmsIdentity {
  const ca = selfSignedCa(keys.caKeyPem, 'Dstack KMS CA (simulated)');
  const tempCa = selfSignedCa(keys.tempCaKeyPem, 'Dstack Client Temp CA (simulated)');
  const rpc = signedLeaf(ca, '10.0.2.2', { ips: ['10.0.2.2', '127.0.0.1'], attestation });
  return { ca, tempCa, rpc };
}

// The attestation in the client certificate of an mTLS request, when the temp CA signed it.
export function callerAttestation(req: IncomingMessage): SimAttestation | undefined {
  const socket = req.socket as TLSSocket;
  if (!socket.authorized) return undefined;
  const der = socket.getPeerCertificate().raw;
  return der instanceof Buffer ? attestationIn(der) : undefined;
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(`${JSON.stringify(value)}\n`);
}
