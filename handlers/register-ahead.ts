import { unrecordedAppId, type ReconcileDeps } from './reconcile.ts';
import type { AppRecord } from '../src/state/record.ts';

// Register the compose hashes a batch of apps is about to deploy or upgrade to, in one allowlist
// write for the whole batch instead of one per operation (a burst of 1 000 new files would
// otherwise rewrite auth-config.json 1 000 times). Each record names the hash before the
// allowlist does (write-ahead), so a crash in between leaves a hash we know to prune, never one
// we do not. The operations register again, which costs no write when the hash is there; any
// failure here is theirs to meet and report.
export async function registerAhead(names: readonly string[], deps: ReconcileDeps): Promise<void> {
  const due = await Promise.all(names.map((name) => recordAhead(name, deps)));
  await Promise.allSettled(due.flatMap((d) => (d ? [deps.allowlist.addHash(d.appId, d.hash)] : [])));
}

async function recordAhead(name: string, deps: ReconcileDeps): Promise<{ appId: string; hash: string } | undefined> {
  const desired = deps.desired(name);
  if (desired.kind !== 'app') return undefined;
  const { spec } = desired;
  // A record that cannot be read is never written over: the operation meets it and holds.
  const record = await deps.loadRecord(name).catch(() => null);
  if (record === null || record?.registeredHashes.includes(spec.composeHash)) return undefined;
  // The app id the operation will use: the record's, else the one an app without one has.
  const appId = record?.appId ?? unrecordedAppId(name, spec, deps);
  const ahead: AppRecord = {
    phase: 'pending',
    ...record,
    name,
    file: spec.file,
    appId,
    registeredHashes: [...(record?.registeredHashes ?? []), spec.composeHash],
  };
  const saved = await deps.records.save(ahead).then(
    () => true,
    () => false,
  );
  return saved ? { appId, hash: spec.composeHash } : undefined;
}
