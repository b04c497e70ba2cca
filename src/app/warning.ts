// One thing in a compose file that a CVM will not honour as written. Not fatal: the app deploys,
// and the operator sees the warning in the journal, in `status` and in `hash --json`.
// `service` is empty for file-level keys (top-level `secrets:`, `configs:`, `include:`).
export type AppWarning = { service: string; key: string; message: string };

// One line for an operator: `service web: volumes: bind-mounts ./x from the host …`.
export function formatWarning(w: AppWarning): string {
  return `${w.service ? `service ${w.service}: ` : ''}${w.key}: ${w.message}`;
}
