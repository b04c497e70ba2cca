// The simulated KMS's side of a boot: post a BootInfo to the auth webhook's `/bootAuth/app` (an
// app's boot) or `/bootAuth/kms` (a KMS onboarding or being onboarded from), exactly as dstack-kms
// does, and hand back the verdict and the gateway app id the KMS passes on to the guest.
import type { AppKeyDecision, RequestAppKeys } from './vm-boot.ts';

// The simulated TDX platform: what a real quote would carry besides the app's own measurements.
export type SimPlatform = {
  tcbStatus: string;
  advisoryIds: string[];
  mrAggregated: string;
  deviceId: string;
};

// An UpToDate TDX machine with no advisories, so auth-simple's defaults let it through.
export const DEFAULT_SIM_PLATFORM: SimPlatform = {
  tcbStatus: 'UpToDate',
  advisoryIds: [],
  mrAggregated: '5e1a7ed0'.repeat(8),
  deviceId: 'de51ce1d'.repeat(8),
};

// The BootInfo fields the KMS sends (camelCase, hex lowercase without 0x, as serde_human_bytes).
export type BootInfoBody = {
  mrAggregated: string;
  osImageHash: string;
  appId: string;
  composeHash: string;
  instanceId: string;
  deviceId: string;
  tcbStatus: string;
  advisoryIds: string[];
};

// Ask the webhook at `authUrl` (http://host:port) whether `info` may have its keys.
export async function postBootAuth(authUrl: string, kind: 'app' | 'kms', info: BootInfoBody): Promise<AppKeyDecision> {
  const res = await fetch(`${authUrl}/bootAuth/${kind}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...info, mrSystem: '' }),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`auth webhook ${authUrl} answered HTTP ${res.status}: ${text}`);
  const body = JSON.parse(text) as { isAllowed?: unknown; reason?: unknown; gatewayAppId?: unknown };
  const str = (value: unknown): string => (typeof value === 'string' ? value : '');
  return { isAllowed: body.isAllowed === true, reason: str(body.reason), gatewayAppId: str(body.gatewayAppId) };
}

// An app boot's key request, judged by the webhook at `authUrl` on the simulated `platform`.
export function createWebhookKeyRequester(authUrl: string, platform: SimPlatform): RequestAppKeys {
  return (request) =>
    postBootAuth(authUrl, 'app', {
      mrAggregated: platform.mrAggregated,
      osImageHash: request.osImageHash,
      appId: request.appId,
      composeHash: request.composeHash,
      instanceId: request.instanceId,
      deviceId: platform.deviceId,
      tcbStatus: platform.tcbStatus,
      advisoryIds: platform.advisoryIds,
    });
}
