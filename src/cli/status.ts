// `dstack-supervisor status [--json] [--config FILE]`: what the running supervisor last wrote
// for itself and for each app (phase, app id, VM id, hash, URLs, last error and its code), read
// from the status files in `state_dir`, so it works without talking to the service. The text
// starts with the supervisor.toml it read (or that it uses the defaults); --json carries the same
// as its `config` key, so stdout stays one JSON document (issue 15).
import { loadConfigWithSource, type ConfigSource } from '../config.ts';
import { describeError, SupervisorError } from '../errors.ts';
import { readAllStatuses, readGatewayStatus, readSupervisorStatus, statusDir, STATUS_READ } from '../status/store.ts';
import { formatStatusLine } from '../status/summary.ts';
import { formatStatusTable } from '../status/table.ts';
import { formatGatewayStatus } from '../status/gateway-text.ts';
import { buildStatusReport } from '../status/report.ts';
import type { SupervisorStatus } from '../status/schema.ts';
import { parseCommand } from './args.ts';
import { COMMAND_SPECS } from './commands.ts';
import { findServicePid } from '../service/pid-file.ts';

// Run the command; exit 0 with the report (also when no app exists yet), 1 when the config or
// the state directory cannot be read, 2 on bad usage.
export async function run(args: string[]): Promise<number> {
  const parsed = parseCommand('status', COMMAND_SPECS.status, args);
  if (!parsed.ok) return parsed.exitCode;
  const { values } = parsed;
  try {
    const { config, source } = await loadConfigWithSource(values.config);
    const stateDir = config.state_dir;
    const listing = await readAllStatuses(stateDir);
    for (const { file, reason } of listing.unreadable) {
      process.stderr.write(`dstack-supervisor status: skipping ${file}: ${reason}\n`);
    }
    const service = await readSupervisorStatus(stateDir).catch((err: unknown) => {
      // Like a broken app status: said, and the rest is still shown.
      if (!(err instanceof SupervisorError && err.code === STATUS_READ)) throw err;
      process.stderr.write(`dstack-supervisor status: skipping ${err.message}\n`);
      return null;
    });
    const gateway = await readGatewayStatus(stateDir).catch((err: unknown) => {
      if (!(err instanceof SupervisorError && err.code === STATUS_READ)) throw err;
      process.stderr.write(`dstack-supervisor status: skipping ${err.message}\n`);
      return null;
    });
    const found = await findServicePid(stateDir);
    const pid = 'pid' in found ? found.pid : null;
    if (values.json) {
      process.stdout.write(`${JSON.stringify(buildStatusReport(source, service, pid, listing.apps, gateway), null, 2)}\n`);
      return 0;
    }
    process.stdout.write(`${describeConfig(source)}\n${describeService(service, pid, statusDir(stateDir))}\n`);
    if (gateway) process.stdout.write(`${formatGatewayStatus(gateway)}\n`);
    if (listing.apps.length > 0) process.stdout.write(`\n${formatStatusTable(listing.apps)}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof SupervisorError) && !isFsError(err)) throw err;
    process.stderr.write(`dstack-supervisor status: ${describeError(err)}\n`);
    return 1;
  }
}

// The first line: which supervisor.toml was read, so a status of the wrong state_dir is plain.
function describeConfig(source: ConfigSource): string {
  return source.found ? `config: ${source.path}` : `config: ${source.path} does not exist; using the defaults`;
}

// The heading line: the service's own phase and counts (and whether it still runs), or where
// status files are expected.
function describeService(service: SupervisorStatus | null, pid: number | null, dir: string): string {
  if (service === null) return `supervisor: no status in ${dir} yet (has dstack-supervisor run started?)`;
  const line = formatStatusLine(service.counts, { watcherDegraded: service.watcher === 'degraded' });
  const version = service.version === undefined ? '' : `version ${service.version}, `;
  const running = pid === null ? 'not running' : `pid ${pid}`;
  return `supervisor: ${service.phase} (${version}updated ${service.updated_at}, ${running}): ${line}`;
}

function isFsError(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).syscall === 'string';
}
