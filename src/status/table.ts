// The human view of `dstack-supervisor status`: one row per app, columns padded to fit.
import { secondsUntilDelete } from './phase.ts';
import type { AppStatus } from './schema.ts';

const PREFIX = 12;
const HEADER = ['APP', 'FILE', 'PHASE', 'APP ID', 'VM ID', 'HASH', 'URLS', 'LAST ERROR'] as const;

// Render the statuses as a table; absent values print as `-`, ids and hashes as 12-hex prefixes,
// and a pending delete with the time left (`deleting (4 s)`) as of `now`. A GPUS column (the PCI
// addresses each app's VM holds) appears only on a host where some app has GPUs.
export function formatStatusTable(apps: readonly AppStatus[], now = Date.now()): string {
  const withGpus = apps.some((s) => (s.gpus ?? []).length > 0);
  const header = withGpus ? [...HEADER.slice(0, -1), 'GPUS', 'LAST ERROR'] : HEADER.slice();
  const row = (s: AppStatus) => {
    const cells = statusRow(s, now);
    return withGpus ? [...cells.slice(0, -1), (s.gpus ?? []).join(',') || '-', cells.at(-1)!] : cells;
  };
  const rows = [header, ...apps.map(row)];
  const widths = header.map((_, col) => Math.max(...rows.map((r) => r[col]!.length)));
  // The last column is not padded, so lines carry no trailing blanks.
  return rows.map((r) => r.map((cell, col) => (col === r.length - 1 ? cell : cell.padEnd(widths[col]!))).join('  ')).join('\n');
}

function statusRow(s: AppStatus, now: number): string[] {
  const left = s.phase === 'deleting' && s.delete_at ? ` (${secondsUntilDelete(s.delete_at, now)} s)` : '';
  return [
    s.app,
    s.file,
    `${s.phase}${left}`,
    s.app_id?.slice(0, PREFIX) ?? '-',
    s.vm_id ?? '-',
    s.compose_hash?.slice(0, PREFIX) ?? '-',
    s.urls.length > 0 ? s.urls.join(',') : '-',
    oneLine(s.last_error) ?? '-',
  ];
}

function oneLine(text: string | null): string | null {
  return text === null ? null : text.replace(/\s*\n\s*/g, ' ');
}
