// What `<state_dir>/status/*.json` holds: one file per app that config-management tools can
// wait on (`phase == "running"`), and `_supervisor.json` for the service as a whole.
import * as z from 'zod';
import { APP_NAME_PATTERN } from '../app/name.ts';
import { PHASES, type Phase } from './phase.ts';

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits (a sha256)');
const isoTime = z.iso.datetime();

// One app's status. Unknown values are null, not absent, so readers see every key.
export const AppStatusSchema = z
  .object({
    app: z.string().regex(APP_NAME_PATTERN),
    // The compose file the app comes from, as the supervisor found it in apps.d.
    file: z.string().min(1),
    phase: z.enum(PHASES),
    // dstack app id: 40 lowercase hex digits (docs/dstack.md §2.4).
    app_id: z.string().regex(/^[0-9a-f]{40}$/).nullable(),
    vm_id: z.string().min(1).nullable(),
    // The compose hash of the deployment this status describes.
    compose_hash: sha256Hex.nullable(),
    urls: z.array(z.string()),
    last_error: z.string().nullable(),
    // The stable code of last_error (`APP_YAML`, `VMM_UNREACHABLE`, `APP_PORT_CONFLICT`, … the
    // codes of src/**/errors.ts), for tools that must not match on wording; null with no error.
    // Absent in files written before issue 15.
    code: z.string().regex(/^[A-Z][A-Z0-9_]*$/).nullable().optional(),
    warnings: z.array(z.string()),
    // Phase `deleting`: when the app is torn down unless its file comes back; null otherwise.
    // Absent in files written before issue 15.
    delete_at: isoTime.nullable().optional(),
    // The GPUs the app's VM holds (PCI addresses, "0000:18:00.0"); [] for none. Absent in files
    // written before issue 19.
    gpus: z.array(z.string()).optional(),
    // HMAC-SHA256, under this host's key, of the NAME.env values the app's VM was last given
    // (src/status/env-digest.ts); null with no NAME.env. Absent in files written before issue 17.
    env_digest: sha256Hex.nullable().optional(),
    updated_at: isoTime,
  })
  .strict();
export type AppStatus = z.infer<typeof AppStatusSchema>;

// `init` until the first scan and plan are done (READY=1 goes out with `ready`).
export const SUPERVISOR_PHASES = ['init', 'ready'] as const;
export type SupervisorPhase = (typeof SUPERVISOR_PHASES)[number];

// The service as a whole: lifecycle, watcher health (docs/apps-dir.md rule 11) and app counts per phase.
export const SupervisorStatusSchema = z
  .object({
    phase: z.enum(SUPERVISOR_PHASES),
    watcher: z.enum(['ok', 'degraded']),
    // Every phase, 0 when empty; a file written before a phase existed lacks its key.
    counts: z
      .partialRecord(z.enum(PHASES), z.number().int().nonnegative())
      .transform((counts) => Object.fromEntries(PHASES.map((p) => [p, counts[p] ?? 0])) as Record<Phase, number>),
    // The package version of the service that wrote the file; absent in files before issue 15.
    version: z.string().min(1).optional(),
    updated_at: isoTime,
  })
  .strict();
export type SupervisorStatus = z.infer<typeof SupervisorStatusSchema>;

// Tier 2's gateway (`_gateway.json`, issue 14): where it stands, why, and the app being moved to
// or from it. Written only once gateway.d has been used.
// Where `*.<domain>` points (src/gateway/dns-check.ts): `problem` null when it is this host.
const GatewayDnsSchema = z
  .object({
    record: z.string(),
    expected: z.array(z.string()),
    resolved: z.array(z.string()),
    // The resolvers asked; [] = the host's own.
    servers: z.array(z.string()),
    problem: z.string().nullable(),
  })
  .strict();

export const GATEWAY_PHASES = ['off', 'invalid', 'deploying', 'booting', 'configuring', 'certificate', 'serving', 'draining', 'stopped', 'failed'] as const;
export const GatewayStatusSchema = z
  .object({
    phase: z.enum(GATEWAY_PHASES),
    serving: z.boolean(),
    reason: z.string(),
    vm_id: z.string().nullable(),
    // The base domain apps are named under.
    domain: z.string().nullable(),
    switching: z.string().nullable(),
    // A gateway CVM that failed to boot or exited: its boot_error ("" when it reported none) and
    // the last lines of its log on the VMM; null and [] otherwise. Absent in files written before.
    boot_error: z.string().nullable().optional(),
    log_tail: z.array(z.string()).optional(),
    // The last check that `*.<domain>` resolves to the host (once the gateway served); null before.
    dns: GatewayDnsSchema.nullable().optional(),
    updated_at: isoTime,
  })
  .strict();
export type GatewayStatusFile = z.infer<typeof GatewayStatusSchema>;
