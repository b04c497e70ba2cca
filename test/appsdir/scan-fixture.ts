// A temp apps.d with a scanner on a hand-driven clock, shared by the scanner tests.
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createScanner, type ScanEntry, type ScanOptions, type ScanResult, type Scanner } from '../../src/appsdir/scan.ts';
import { defer } from '../helpers/cleanup.ts';

export type Listing = Extract<ScanResult, { kind: 'listing' }>;

export type Fixture = {
  root: string;
  dir: string;
  clock: { t: number };
  scanner: Scanner;
  settleMs: number;
  // Write a file in apps.d with mode 0644 (whatever the umask).
  put(file: string, text: string | Buffer): Promise<string>;
  // Scan now and require a listing.
  list(): Promise<Listing>;
};

// A fresh apps.d under its own temp dir, removed after the test.
export async function makeFixture(
  t: { after: (fn: () => Promise<void>) => void },
  options: Partial<Omit<ScanOptions, 'dir' | 'now'>> = {},
): Promise<Fixture> {
  const root = await mkdtemp(join(tmpdir(), 'appsdir-'));
  defer(t, () => rm(root, { recursive: true, force: true }));
  const dir = join(root, 'apps.d');
  await mkdir(dir, { mode: 0o755 });
  const clock = { t: 1_000_000 };
  const settleMs = options.settleMs ?? 1000;
  const scanner = createScanner({
    dir,
    owner: process.getuid?.() ?? 0,
    maxFileBytes: 1024 * 1024,
    settleMs,
    now: () => clock.t,
    ...options,
  });
  async function put(file: string, text: string | Buffer): Promise<string> {
    const path = join(dir, file);
    await writeFile(path, text);
    await chmod(path, 0o644);
    return path;
  }
  async function list(): Promise<Listing> {
    const result = await scanner.scan();
    assert.equal(result.kind, 'listing', result.kind === 'dir-error' ? result.message : '');
    return result as Listing;
  }
  return { root, dir, clock, scanner, settleMs, put, list };
}

// The entry for app `name`, which must be present.
export function entryOf(listing: Listing, name: string): ScanEntry {
  const entry = listing.entries.find((e) => e.name === name);
  assert.ok(entry, `no entry for ${name} in ${JSON.stringify(listing.entries.map((e) => e.name))}`);
  return entry;
}

// Scan now and again Q later; returns the second listing.
export async function settle(f: Fixture): Promise<Listing> {
  await f.list();
  f.clock.t += f.settleMs;
  return f.list();
}

// The settled text of app `name`, failing if it is not settled.
export function settledText(listing: Listing, name: string): string {
  const entry = entryOf(listing, name);
  assert.equal(entry.state, 'settled', JSON.stringify({ ...entry, bytes: undefined }));
  return entry.state === 'settled' ? entry.bytes.toString('utf8') : '';
}
