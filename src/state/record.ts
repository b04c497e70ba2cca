import * as z from 'zod';
import { APP_NAME_PATTERN } from '../app/name.ts';
import { PHASES } from '../status/phase.ts';

// The operations an intent record can announce.
export const INTENT_OPS = ['deploy', 'upgrade', 'restart', 'teardown'] as const;

// Written before an operation starts and cleared when it has finished (docs/apps-dir.md rule 18): after a
// crash, a record with an intent says which operation may be half done and towards which hash.
export const IntentSchema = z
  .object({
    op: z.enum(INTENT_OPS),
    // The compose hash the operation moves to ('' for a teardown of an app that never ran).
    toHash: z.string(),
    // Clock time (ms since the epoch) when the operation started.
    startedAt: z.number(),
    // StartVm returned: the guest boots the new manifest. Until then an upgrade or restart may
    // have left a guest running what it booted before UpdateVm, which Status cannot show.
    launched: z.boolean().optional(),
    // The host ports the guest running when the operation began was launched with: UpdateVm
    // changes the VM's manifest at once, but QEMU keeps those forwards until it stops, so other
    // apps wait for them until `launched` (src/controller/desired.ts).
    guestPorts: z.array(z.object({ protocol: z.string(), host_port: z.number() }).strict()).optional(),
  })
  .strict();

// Everything the supervisor must remember about one app across a restart or a kill -9.
export const AppRecordSchema = z
  .object({
    name: z.string().regex(APP_NAME_PATTERN),
    // The apps.d file the app came from, for messages after the file is gone.
    file: z.string(),
    appId: z.string(),
    vmId: z.string().optional(),
    phase: z.enum(PHASES),
    // The compose hash that last deployed successfully; only then is it saved (STYLE 3).
    appliedHash: z.string().optional(),
    // The hashes this app has in the auth allowlist right now.
    registeredHashes: z.array(z.string()),
    intent: IntentSchema.optional(),
    // sha256 over the NAME.env values the VM was last given (never the values): a value-only
    // change is detected by this, since values are not part of the compose hash.
    envHash: z.string().optional(),
    lastError: z.string().optional(),
  })
  .strict();

// One intent; see IntentSchema.
export type Intent = z.infer<typeof IntentSchema>;

// One app's state record; see AppRecordSchema.
export type AppRecord = z.infer<typeof AppRecordSchema>;
