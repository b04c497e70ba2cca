import type { HandlerDeps } from './deps.ts';
import type { AppRecord } from '../src/state/record.ts';
import type { Decision } from '../src/log/decision.ts';
import { sameSet } from './plan.ts';

const short = (hash: string) => hash.slice(0, 12);

// Make the app's allowlist entry list exactly the hashes its record says its VM may boot, when
// something else changed it: an entry removed or edited by hand, or auth-config.json rewritten by
// another tool (upstream's `dstackup install` does). Left alone, the VM's next boot would be denied
// ("app not registered") for good. Foreign entries and the entry's other keys are never touched.
// Returns the journal line for a repair, or undefined when the entry was already right.
export async function repairAllowlistEntry(record: AppRecord, deps: Pick<HandlerDeps, 'allowlist'>): Promise<Decision | undefined> {
  const want = record.registeredHashes;
  const listed = await deps.allowlist.hashesOf(record.appId);
  if (listed === undefined ? want.length === 0 : sameSet(listed, want)) return undefined;
  if (want.length === 0) await deps.allowlist.removeApp(record.appId);
  else await deps.allowlist.setHashes(record.appId, want);
  const was = listed === undefined ? 'had no entry' : listed.length === 0 ? 'listed no hash' : `listed ${listed.map(short).join(', ')}`;
  const now = want.length === 0 ? 'removed the entry' : `restored ${want.map(short).join(', ')}`;
  return {
    app: record.name,
    file: record.file,
    action: 'repair',
    reason: `auth-config.json ${was} for app id ${record.appId.slice(0, 12)}; ${now}, the hashes its VM may boot`,
  };
}
