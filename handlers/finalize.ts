import type { HandlerDeps } from './deps.ts';
import type { DesiredSpec } from './plan.ts';
import type { AppRecord } from '../src/state/record.ts';
import { grantAddresses } from '../src/controller/gpu-claims.ts';

// Where the operator reaches the app: each published tcp port on its host address, and through
// the gateway (Tier 2) `https://<app id>-<port>.<domain>`, the port being the one inside the CVM.
export function urlsOf(spec: Pick<DesiredSpec, 'ports' | 'https'>, appId: string): string[] {
  const tcp = spec.ports.filter((p) => p.protocol === 'tcp');
  const direct = tcp.map((p) => `http://${p.host_address.includes(':') ? `[${p.host_address}]` : p.host_address}:${p.host_port}`);
  const https = spec.https;
  if (!https) return direct;
  const suffix = https.proxyPort === 443 ? '' : `:${https.proxyPort}`;
  return [...direct, ...[...new Set(tcp.map((p) => p.vm_port))].map((port) => `https://${appId}-${port}.${https.baseDomain}${suffix}`)];
}

// The app runs `spec` in VM `vmId`: prune every other hash from its allowlist entry (only now, so
// the old hash outlives the old VM), record the applied hash and clear the intent.
export async function finalizeApp(spec: DesiredSpec, record: AppRecord, vmId: string, deps: HandlerDeps): Promise<AppRecord> {
  await deps.allowlist.setHashes(record.appId, [spec.composeHash]);
  const done: AppRecord = {
    ...record,
    file: spec.file,
    vmId,
    appliedHash: spec.composeHash,
    registeredHashes: [spec.composeHash],
    phase: 'running',
    intent: undefined,
    lastError: undefined,
    envHash: spec.env?.hash,
  };
  await deps.records.save(done);
  await deps.report({ app: spec.name, file: spec.file, phase: 'running', record: done, urls: urlsOf(spec, record.appId), gpus: grantAddresses(spec.gpuGrant) });
  return done;
}
