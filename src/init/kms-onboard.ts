// A KMS replica (issue 17, docs/fleet.md "KMS replicas"): with `[init] kms_onboard_from`, this
// host's KMS CVM starts without keys in onboarding mode, and init has it take them over from the
// source KMS (upstream kms/src/onboard_service.rs). Before anything is deployed, init checks what
// it can: that this host's auth-config.json trusts some source KMS (the onboarding KMS judges the
// source's measurement by it) and that the source answers as a KMS with keys; every message says
// what state is left. After the CVM boots,
// init reads its measurement (`GetAttestationInfo`), calls `Onboard` and then `GET /finish`; the
// source's webhook decides whether this measurement may have the keys.
import { readFile } from 'node:fs/promises';
import { Agent, request } from 'undici';
import { describeError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import { onboardDenied, onboardFailed, onboardUntrusted, sourceNotReady, sourceUnreachable } from './errors.ts';
import type { CvmMeasurement } from '../vmm/guest-info.ts';
import type { KmsProbe } from './kms-probe.ts';

// What the source KMS answered before anything was deployed: its k256 public key, which the
// onboarded KMS must then serve too.
export type OnboardSource = { url: string; k256Pubkey: string };


// Errors that mean nothing answered at the TCP level (undici and node:net codes).
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET']);

const CALL_TIMEOUT_MS = 5_000;
// Onboard answers once the replica has dialled the source, been judged and got the keys: quotes
// on both sides and two webhook calls.
const ONBOARD_TIMEOUT_MS = 120_000;

// Before anything is changed: the source answers as a KMS with keys. Throws the operator's error.
export async function checkOnboardSource(url: string, probe: KmsProbe): Promise<OnboardSource> {
  try {
    return { url, k256Pubkey: (await probe(new URL(url).origin)).k256Pubkey };
  } catch (err) {
    if (await answersPlainHealth(url)) throw sourceNotReady(url, 'serves the Onboard service (plain HTTP) instead of its RPC');
    if (isUnreachable(err)) throw sourceUnreachable(url, err);
    throw sourceNotReady(url, `answers, but not as a KMS with keys (${describeError(err)})`);
  }
}

// After rendering, before deploying: this host's auth-config.json (init has just rendered it)
// trusts some source KMS, or this host's KMS would refuse every one.
export async function checkSourceTrusted(url: string, authConfigPath: string): Promise<void> {
  const listed: unknown = (JSON.parse(await readFile(authConfigPath, 'utf8')) as { kms?: { mrAggregated?: unknown } }).kms?.mrAggregated;
  if (Array.isArray(listed) && listed.length > 0) return;
  throw onboardUntrusted(authConfigPath, url, undefined, "kms.mrAggregated lists no KMS measurement, so this host's KMS would refuse every source KMS");
}

// One onboarding. `attempt(vmId)` is called until it returns (the KMS now has keys, or had them)
// or throws an InitError (a refusal); a plain Error means "not yet" (the service is not up).
// `measurement()`: the KMS's, as it attests itself while onboarding (upstream
// AttestationInfoResponse; the same values as its guest agent's tcb_info).
export type Onboarder = { attempt: (vmId: string) => Promise<void>; measurement: () => CvmMeasurement | undefined; close: () => Promise<void> };

// What an onboarding needs: the source URL, the RPC domain of this KMS (the host as guests see
// it), this host's auth-config.json (named in messages), the KMS's host port and the HTTPS probe.
export type OnboardInputs = { sourceUrl: string; domain: string; authConfigPath: string; port: number; probe: KmsProbe; log: Logger };

// The onboarding of the KMS CVM published on `inputs.port`.
export function createOnboarder(inputs: OnboardInputs): Onboarder {
  const agent = new Agent({ headersTimeout: ONBOARD_TIMEOUT_MS, bodyTimeout: ONBOARD_TIMEOUT_MS });
  const base = `http://127.0.0.1:${inputs.port}`;
  let measurement: CvmMeasurement | undefined;
  const call = async (method: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
    const res = await request(`${base}/prpc/Onboard.${method}?json`, { dispatcher: agent, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const text = await res.body.text();
    try {
      return { status: res.statusCode, json: JSON.parse(text) as Record<string, unknown> };
    } catch {
      throw new Error(`Onboard.${method} answered HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
    }
  };
  const finish = async (): Promise<void> => {
    await (await request(`${base}/finish`, { dispatcher: agent })).body.text();
  };
  const attempt = async (vmId: string): Promise<void> => {
    // A KMS that already serves its RPC has its keys (an earlier init onboarded it).
    if (await inputs.probe(`https://127.0.0.1:${inputs.port}`).then(() => true, () => false)) return;
    const info = await call('GetAttestationInfo', {});
    if (info.status !== 200) throw new Error(`GetAttestationInfo: ${String(info.json['error'])}`);
    measurement = { mrAggregated: hex(info.json['mr_aggregated']), osImageHash: hex(info.json['os_image_hash']), deviceId: hex(info.json['device_id']) };
    inputs.log.info({ MR_AGGREGATED: measurement.mrAggregated }, `the KMS CVM ${vmId} onboards from ${inputs.sourceUrl}; its measurement: mr_aggregated ${measurement.mrAggregated}, os image ${measurement.osImageHash}`);
    const onboarded = await call('Onboard', { source_url: inputs.sourceUrl, domain: inputs.domain });
    const error = typeof onboarded.json['error'] === 'string' ? onboarded.json['error'] : '';
    // Keys stored but not finished: an init that stopped between Onboard and Finish.
    if (onboarded.status === 200 || /already been onboarded/.test(error)) return finish();
    if (/Source KMS is not allowed/.test(error)) throw onboardUntrusted(inputs.authConfigPath, inputs.sourceUrl, vmId, `this host's KMS refused the source KMS (${error})`);
    const denied = /Boot denied: (.*)$/.exec(error);
    if (denied !== null) throw onboardDenied(inputs.sourceUrl, vmId, measurement, denied[1] ?? '');
    throw onboardFailed(inputs.sourceUrl, vmId, `the KMS CVM ${vmId} answered: ${error === '' ? `HTTP ${onboarded.status}` : error}`);
  };
  return { attempt, measurement: () => measurement, close: () => agent.close() };
}

// Bytes travel as hex in prpc's JSON mode.
function hex(value: unknown): string {
  return typeof value === 'string' ? value.toLowerCase().replace(/^0x/, '') : '';
}

// A source in onboarding mode answers `/health` in plain HTTP on its RPC port.
async function answersPlainHealth(url: string): Promise<boolean> {
  const agent = new Agent();
  try {
    const res = await request(`http://${new URL(url).host}/health`, { dispatcher: agent, signal: AbortSignal.timeout(CALL_TIMEOUT_MS) });
    return res.statusCode === 200 && (await res.body.text()).trim() === 'OK';
  } catch {
    return false;
  } finally {
    await agent.close();
  }
}

function isUnreachable(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if ((typeof code === 'string' && UNREACHABLE_CODES.has(code)) || e.name === 'TimeoutError') return true;
  }
  return false;
}
