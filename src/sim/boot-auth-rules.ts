// auth-simple's boot decision (dstack/kms/auth-simple/index.ts, docs/dstack.md §6.2) as a pure function,
// so the simulated webhook and its tests share one copy of the rule order and the reason texts.
import * as z from 'zod';
import { normalizeHexLikeAuthSimple as norm, type AuthConfig } from '../auth/schema.ts';

// The BootInfo body the KMS posts (camelCase). The six strings are required: auth-simple's
// zValidator answers 400 without them; the TCB fields default exactly as upstream does.
export const BootInfoSchema = z.object({
  mrAggregated: z.string(),
  osImageHash: z.string(),
  appId: z.string(),
  composeHash: z.string(),
  instanceId: z.string(),
  deviceId: z.string(),
  tcbStatus: z.string().default(''),
  advisoryIds: z.array(z.string()).default([]),
  mrSystem: z.string().default(''),
});

// A parsed BootInfo request.
export type BootInfo = z.infer<typeof BootInfoSchema>;

// The webhook's answer; `reason` is "" on allow, as in auth-simple.
export type BootDecision = { isAllowed: boolean; reason: string; gatewayAppId: string };

// Which endpoint asked: `/bootAuth/kms` or `/bootAuth/app`.
export type BootKind = 'kms' | 'app';

// Decide one boot request in auth-simple's order: TCB, advisories, OS image, then KMS or app.
export function decideBoot(config: AuthConfig, info: BootInfo, kind: BootKind): BootDecision {
  const deny = (reason: string): BootDecision => ({ isAllowed: false, reason, gatewayAppId: config.gatewayAppId });
  if (!config.allowedTcbStatuses.includes(info.tcbStatus)) return deny('TCB status is not allowed');
  if (info.advisoryIds.some((id) => !config.allowedAdvisoryIds.includes(id))) return deny('advisory ID is not allowed');
  if (!config.osImages.map(norm).includes(norm(info.osImageHash))) return deny('OS image is not allowed');
  const deviceId = norm(info.deviceId);
  if (kind === 'kms') {
    if (!config.kms.mrAggregated.map(norm).includes(norm(info.mrAggregated))) return deny('aggregated MR not allowed');
    if (!deviceAllowed(config.kms, deviceId)) return deny('KMS is not allowed to boot on this device');
  } else {
    const appId = norm(info.appId);
    const entry = Object.entries(config.apps).find(([id]) => norm(id) === appId)?.[1];
    if (!entry) return deny('app not registered');
    if (!entry.composeHashes.map(norm).includes(norm(info.composeHash))) return deny('compose hash not allowed');
    if (!deviceAllowed(entry, deviceId)) return deny('app is not allowed to boot on this device');
  }
  return { isAllowed: true, reason: '', gatewayAppId: config.gatewayAppId };
}

// An empty device list passes, like upstream: only a non-empty list restricts.
function deviceAllowed(entry: { devices: string[]; allowAnyDevice: boolean }, deviceId: string): boolean {
  if (entry.allowAnyDevice || entry.devices.length === 0) return true;
  return entry.devices.map(norm).includes(deviceId);
}
