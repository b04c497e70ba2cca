// What `dstack-supervisor status --json` prints: one object a config tool can poll, documented in
// dstack-supervisor(8) "STATUS JSON". Keys are only ever added, never renamed or dropped; unknown
// values are null, not absent, so readers see every key.
import type { ConfigSource } from '../config.ts';
import type { Phase } from './phase.ts';
import type { AppStatus, GatewayStatusFile, SupervisorPhase, SupervisorStatus } from './schema.ts';

// An app's status with `code`, `delete_at`, `gpus` and `env_digest` always present (files from
// before issues 15, 19 and 17 lack them).
export type AppReport = Omit<AppStatus, 'code' | 'delete_at' | 'gpus' | 'env_digest'> & { code: string | null; delete_at: string | null; gpus: string[]; env_digest: string | null };

// The gateway's status with every key present.
export type GatewayReport = Required<{ [K in keyof GatewayStatusFile]: Exclude<GatewayStatusFile[K], undefined> }>;

export type StatusReport = {
  // supervisor.toml as this command found it (`found` false: absent, every key has its default).
  config: ConfigSource;
  // The service as it last wrote `<state_dir>/status/_supervisor.json`; all null before it ever did.
  supervisor: {
    phase: SupervisorPhase | null;
    // phase == "ready": the first pass over apps.d is done (READY=1 went to systemd).
    ready: boolean;
    watcher: SupervisorStatus['watcher'] | null;
    counts: Record<Phase, number> | null;
    // The version of the service that wrote the file.
    version: string | null;
    updated_at: string | null;
    // The PID of the service while it runs (`<state_dir>/pid.json`, checked against the live
    // process); null when none runs, whatever the file above says.
    pid: number | null;
  };
  // Tier 2 as the service last wrote `_gateway.json`; null while gateway.d was never used. Keys a
  // file from an older version lacks are null ([] for log_tail).
  gateway: GatewayReport | null;
  apps: AppReport[];
};

// Assemble the report from what the status files hold.
export function buildStatusReport(config: ConfigSource, service: SupervisorStatus | null, pid: number | null, apps: readonly AppStatus[], gateway: GatewayStatusFile | null = null): StatusReport {
  return {
    config,
    supervisor: {
      phase: service?.phase ?? null,
      ready: service?.phase === 'ready',
      watcher: service?.watcher ?? null,
      counts: service?.counts ?? null,
      version: service?.version ?? null,
      updated_at: service?.updated_at ?? null,
      pid,
    },
    gateway: gateway && { ...gateway, boot_error: gateway.boot_error ?? null, log_tail: gateway.log_tail ?? [], dns: gateway.dns ?? null },
    apps: apps.map((app) => ({ ...app, code: app.code ?? null, delete_at: app.delete_at ?? null, gpus: app.gpus ?? [], env_digest: app.env_digest ?? null })),
  };
}
