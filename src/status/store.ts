// Status files under `<state_dir>/status/`: `<app>.json` per app and `_supervisor.json`. Each is
// replaced atomically, so a tool polling a file never reads half of one.
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describeError, SupervisorError } from '../errors.ts';
import { syncDir, writeFileAtomic } from '../fsx/atomic.ts';
import { APP_NAME_PATTERN } from '../app/name.ts';
import { AppStatusSchema, GatewayStatusSchema, SupervisorStatusSchema, type AppStatus, type GatewayStatusFile, type SupervisorStatus } from './schema.ts';

// `_` cannot start an app name, so the service's own file never collides with an app's.
const SUPERVISOR_FILE = '_supervisor.json';
const GATEWAY_FILE = '_gateway.json';

// A status file could not be written or removed; the message names the file and the step.
export const STATUS_WRITE = 'STATUS_WRITE';

// A status file exists but cannot be read or is not a valid status.
export const STATUS_READ = 'STATUS_READ';

// What readAllStatuses found: valid statuses sorted by app, and files it could not use.
export type StatusListing = { apps: AppStatus[]; unreadable: Array<{ file: string; reason: string }> };

// The directory that holds the status files.
export function statusDir(stateDir: string): string {
  return join(stateDir, 'status');
}

// Validate and atomically write `<state_dir>/status/<app>.json`.
export async function writeAppStatus(stateDir: string, status: AppStatus): Promise<void> {
  await writeStatusFile(stateDir, `${status.app}.json`, AppStatusSchema, status);
}

// Delete an app's status file once the app is gone; an absent file is fine.
export async function removeAppStatus(stateDir: string, app: string): Promise<void> {
  const dir = statusDir(stateDir);
  const file = join(dir, `${app}.json`);
  try {
    await unlink(file);
    await syncDir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new SupervisorError(STATUS_WRITE, `${file}: cannot remove the status file (${describeError(err)})`, { cause: err });
  }
}

// Every app status in the directory. Temp files and other names are skipped; a file that does
// not parse is listed in `unreadable` rather than hiding the others. No directory: no apps.
export async function readAllStatuses(stateDir: string): Promise<StatusListing> {
  const dir = statusDir(stateDir);
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  const listing: StatusListing = { apps: [], unreadable: [] };
  for (const name of names.filter(isAppStatusFile).sort()) {
    const file = join(dir, name);
    try {
      listing.apps.push(AppStatusSchema.parse(JSON.parse(await readFile(file, 'utf8'))));
    } catch (err) {
      // A file removed between readdir and read is an app that just went away, not a problem.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') listing.unreadable.push({ file, reason: describeError(err) });
    }
  }
  return listing;
}

// Validate and atomically write `<state_dir>/status/_supervisor.json`.
export async function writeSupervisorStatus(stateDir: string, status: SupervisorStatus): Promise<void> {
  await writeStatusFile(stateDir, SUPERVISOR_FILE, SupervisorStatusSchema, status);
}

// The service's status, or null before it first wrote one.
export function readSupervisorStatus(stateDir: string): Promise<SupervisorStatus | null> {
  return readStatusFile(stateDir, SUPERVISOR_FILE, SupervisorStatusSchema, 'supervisor status');
}

// Validate and atomically write `<state_dir>/status/_gateway.json`.
export async function writeGatewayStatus(stateDir: string, status: GatewayStatusFile): Promise<void> {
  await writeStatusFile(stateDir, GATEWAY_FILE, GatewayStatusSchema, status);
}

// Tier 2's status, or null while gateway.d was never used.
export function readGatewayStatus(stateDir: string): Promise<GatewayStatusFile | null> {
  return readStatusFile(stateDir, GATEWAY_FILE, GatewayStatusSchema, 'gateway status');
}

// One of the service's own status files, or null when it does not exist yet.
async function readStatusFile<T>(stateDir: string, name: string, schema: { parse(v: unknown): T }, what: string): Promise<T | null> {
  const file = join(statusDir(stateDir), name);
  try {
    return schema.parse(JSON.parse(await readFile(file, 'utf8')));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new SupervisorError(STATUS_READ, `${file}: not a valid ${what} (${describeError(err)})`, { cause: err });
  }
}

function isAppStatusFile(name: string): boolean {
  return name.endsWith('.json') && APP_NAME_PATTERN.test(name.slice(0, -'.json'.length));
}

async function writeStatusFile<T>(stateDir: string, name: string, schema: { parse(v: unknown): T }, status: T): Promise<void> {
  const dir = statusDir(stateDir);
  const file = join(dir, name);
  let step = 'checking the status';
  try {
    const valid = schema.parse(status);
    step = 'creating the status directory';
    await mkdir(dir, { recursive: true, mode: 0o755 });
    step = 'writing the file';
    await writeFileAtomic(file, `${JSON.stringify(valid, null, 2)}\n`, { mode: 0o644 });
  } catch (err) {
    throw new SupervisorError(STATUS_WRITE, `${file}: ${step} failed (${describeError(err)})`, { cause: err });
  }
}
