import { unrecordedAppId, type ReconcileDeps } from './reconcile.ts';
import type { AppRecord } from '../src/state/record.ts';
import { isHashOf } from './plan.ts';

// Register the compose hashes a batch of apps is about to deploy or upgrade to, in one allowlist
// write for the whole batch instead of one per operation (a burst of 1 000 new files would
// otherwise rewrite auth-config.json 1 000 times). Each record names the hash before the
// allowlist does (write-ahead), so a crash in between leaves a hash we know to prune, never one
// we do not. The operations register again, which costs no write when the hash is there; any
// failure here is theirs to meet and report.
export async function registerAhead(names: readonly string[], deps: ReconcileDeps): Promise<void> {
  const due = await Promise.all(names.map((name) => recordAhead(name, deps)));
  // The status names the app id before the allowlist lists it: should the record be moved aside
  // before the operation runs, the entry registered here is still found by it (soak seed 14303).
  await Promise.allSettled(due.flatMap((d) => (d && d.firstId ? [deps.report({ app: d.record.name, file: d.record.file, phase: d.record.phase, record: d.record })] : [])));
  await Promise.allSettled(due.flatMap((d) => (d ? [deps.allowlist.addHash(d.record.appId, d.hash)] : [])));
}

async function recordAhead(name: string, deps: ReconcileDeps): Promise<{ record: AppRecord; hash: string; firstId: boolean } | undefined> {
  const desired = deps.desired(name);
  if (desired.kind !== 'app') return undefined;
  const { spec } = desired;
  // A record that cannot be read is never written over: the operation meets it and holds.
  const record = await deps.loadRecord(name).catch(() => null);
  // A VM that runs this content in its earlier form is kept in it (inRunningForm): nothing ahead.
  if (record === null || record?.registeredHashes.some((h) => isHashOf(spec, h))) return undefined;
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
  return saved ? { record: ahead, hash: spec.composeHash, firstId: deps.lastAppId(name) !== appId } : undefined;
}
