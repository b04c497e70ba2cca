import type { HandlerDeps } from './deps.ts';
import type { AppRecord, Intent } from '../src/state/record.ts';
import type { Phase } from '../src/status/phase.ts';

// Write the intent record of an operation before its first side effect (docs/apps-dir.md rule 18) and
// publish the phase it puts the app in; returns the record as saved.
export async function beginOperation(
  record: AppRecord,
  change: { op: Intent['op']; toHash: string; phase: Phase; vmId?: string; guestPorts?: Intent['guestPorts'] },
  deps: HandlerDeps,
): Promise<AppRecord> {
  const { guestPorts } = change;
  const started: AppRecord = {
    ...record,
    ...(change.vmId === undefined ? {} : { vmId: change.vmId }),
    phase: change.phase,
    intent: { op: change.op, toHash: change.toHash, startedAt: deps.clock.now(), ...(guestPorts === undefined ? {} : { guestPorts }) },
  };
  // The record is what must precede the operation's side effects; the status file is a view of
  // it, written alongside.
  await Promise.all([deps.records.save(started), deps.report({ app: started.name, file: started.file, phase: change.phase, record: started })]);
  return started;
}

// Register `hash` for the app in the allowlist and remember it in the record. The allowlist is
// asked even when the record lists the hash (written ahead, it may not have landed); that costs
// no write when it is there.
export async function registerHash(record: AppRecord, hash: string, deps: HandlerDeps): Promise<AppRecord> {
  await deps.allowlist.addHash(record.appId, hash);
  if (record.registeredHashes.includes(hash)) return record;
  const registered: AppRecord = { ...record, registeredHashes: [...record.registeredHashes, hash] };
  await deps.records.save(registered);
  return registered;
}

// Note in the intent that StartVm returned, so a later reconcile does not start the guest again.
export async function markLaunched(record: AppRecord, deps: HandlerDeps): Promise<AppRecord> {
  if (!record.intent) return record;
  const launched: AppRecord = { ...record, intent: { ...record.intent, launched: true } };
  await deps.records.save(launched);
  return launched;
}


// Note in the intent that the guest the operation began with is down: the host ports it was
// launched with are free, and its next launch binds the manifest's (soak seed 25303: a StartVm that
// started the guest but failed left them claimed, and a later operation carried them on).
export async function markStopped(record: AppRecord, deps: HandlerDeps): Promise<AppRecord> {
  if (record.intent?.guestPorts === undefined) return record;
  const { guestPorts: _released, ...intent } = record.intent;
  const stopped: AppRecord = { ...record, intent };
  await deps.records.save(stopped);
  return stopped;
}
