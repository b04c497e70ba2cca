// auth-config.json as auth-simple (dstack/kms/auth-simple/index.ts) parses it on every request,
// with the same defaults (docs/dstack.md §6.2). This is the strict, read-side view used by the simulated
// webhook; editing goes through the lenient shape in allowlist.ts so unknown keys survive.
import * as z from 'zod';

const ZERO_ADDRESS = '0x0000000000000000000000000000000000000000';

// Allowed-device settings shared by `kms` and each app entry; auth-simple defaults both to false.
const deviceFields = {
  devices: z.array(z.string()).default([]),
  allowAnyDevice: z.boolean().default(false),
};

// One app's entry under `apps`, keyed by app id.
export const AppEntrySchema = z.object({
  composeHashes: z.array(z.string()).default([]),
  ...deviceFields,
});

// The KMS entry: which aggregated measurements and devices may boot the KMS.
export const KmsEntrySchema = z.object({
  mrAggregated: z.array(z.string()).default([]),
  ...deviceFields,
});

// The whole file. auth-simple pins zod 3.25, whose `kms.default({})` parses `{}` and so fills the
// inner defaults; zod 4's `.default()` returns the value unparsed, so `prefault` is the equivalent.
export const AuthConfigSchema = z.object({
  gatewayAppId: z.string().default(''),
  kmsContractAddr: z.string().default(ZERO_ADDRESS),
  appImplementation: z.string().default(ZERO_ADDRESS),
  chainId: z.number().default(0),
  osImages: z.array(z.string()).default([]),
  // auth-simple enforces TCB status; only UpToDate passes unless the operator widens it.
  allowedTcbStatuses: z.array(z.string()).default(['UpToDate']),
  allowedAdvisoryIds: z.array(z.string()).default([]),
  kms: KmsEntrySchema.prefault({}),
  apps: z.record(z.string(), AppEntrySchema).default({}),
});

// Parsed auth-config.json with every default filled in.
export type AuthConfig = z.infer<typeof AuthConfigSchema>;
// One parsed app entry.
export type AppEntry = z.infer<typeof AppEntrySchema>;

// auth-simple's comparison form: lowercase, then add `0x` if missing. It does not trim, and
// neither do we, so a value with stray whitespace fails here exactly as it does upstream.
export function normalizeHexLikeAuthSimple(value: string): string {
  const lower = value.toLowerCase();
  return lower.startsWith('0x') ? lower : `0x${lower}`;
}
