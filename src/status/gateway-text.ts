// The gateway's part of `dstack-supervisor status`: its phase and reason on one line, then, when
// there is something to show, the failed gateway CVM's boot error and last log lines, and where
// `*.<domain>` points.
import type { GatewayStatusFile } from './schema.ts';

// Render `_gateway.json` as the lines `status` prints (no trailing newline).
export function formatGatewayStatus(gateway: GatewayStatusFile): string {
  const lines = [`gateway: ${gateway.phase}${gateway.domain ? ` (*.${gateway.domain})` : ''}: ${gateway.reason}`];
  if (gateway.boot_error != null) lines.push(`  boot error: ${gateway.boot_error || '(none reported)'}`);
  const tail = gateway.log_tail ?? [];
  if (tail.length > 0) {
    lines.push(`  last lines of its log (GET /logs?id=${gateway.vm_id ?? '<vm id>'} on dstack-vmm):`, ...tail.map((line) => `    ${line}`));
  }
  const dns = gateway.dns;
  if (dns) lines.push(`  dns: ${dns.problem ?? `${dns.record} resolves to ${dns.resolved.join(', ')} (this host)`}`);
  return lines.join('\n');
}
