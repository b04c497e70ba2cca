import { basename } from 'node:path';
import { classifyEntry } from '../src/appsdir/classify.ts';

// The name rules live with the scanner in src/appsdir (src/ may not import watchers/); the
// watcher and its callers take them from here.
export { classifyEntry, describeMisnamed, type EntryClass, type IgnoreReason } from '../src/appsdir/classify.ts';

// True when an event on `path` cannot change what apps.d means, so it need not even schedule a
// rescan: editor swap files, backups, tool temp files. A secrets file (`NAME.env`) is not noise,
// and neither is a misnamed file, which the next scan must warn about.
export function isNoiseEvent(path: string): boolean {
  const entry = classifyEntry(basename(path));
  return entry.kind === 'ignored' && entry.reason !== 'secrets';
}
