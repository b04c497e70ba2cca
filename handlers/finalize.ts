import type { HandlerDeps } from './deps.ts';
import type { DesiredSpec } from './plan.ts';
import type { AppRecord } from '../src/state/record.ts';

// Where the operator reaches the app: each published tcp port on its host address.
export function urlsOf(spec: Pick<DesiredSpec, 'ports'>): string[] {
  return spec.ports
    .filter((p) => p.protocol === 'tcp')
    .map((p) => `http://${p.host_address.includes(':') ? `[${p.host_address}]` : p.host_address}:${p.host_port}`);
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
  await deps.report({ app: spec.name, file: spec.file, phase: 'running', record: done, urls: urlsOf(spec) });
  return done;
}
