// Shared set-up for the simulator tests: temp dirs, app-compose documents, auth configs, a host
// that is stopped when the test ends, and a free loopback port.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { startSimHost, type SimHost, type SimHostOptions } from '../../src/sim/host.ts';
import { DEFAULT_SIM_IMAGE } from '../../src/sim/vmm-config.ts';
import { defer } from '../helpers/cleanup.ts';

// A temp dir owned by the test.
export async function makeTempDir(t: TestContext, prefix = 'sim-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  return dir;
}

// An app-compose JSON string as dstack-cli builds it; `kms` turns on KMS mode.
export function appCompose(name: string, options: { kms?: boolean; extra?: Record<string, unknown> } = {}): string {
  return JSON.stringify(
    {
      manifest_version: 2,
      name,
      runner: 'docker-compose',
      docker_compose_file: `services:\n  ${name}:\n    image: nginx\n`,
      kms_enabled: options.kms ?? false,
      gateway_enabled: false,
      ...options.extra,
    },
    null,
    2,
  );
}

// An auth-simple config that lets `apps` (app id → compose hashes) boot on the default image.
export function authConfigFor(apps: Record<string, string[]>): Record<string, unknown> {
  return {
    osImages: [`0x${DEFAULT_SIM_IMAGE.digest}`],
    kms: { mrAggregated: [], devices: [], allowAnyDevice: true },
    apps: Object.fromEntries(
      Object.entries(apps).map(([id, hashes]) => [id, { composeHashes: hashes, devices: [], allowAnyDevice: true }]),
    ),
  };
}

// Write `value` as pretty JSON.
export async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFile(path, JSON.stringify(value, null, 2));
}

// A simulated host in its own temp dir, stopped when the test ends. Boots take ~20 ms.
export async function startTestHost(t: TestContext, options: Partial<SimHostOptions> = {}): Promise<SimHost> {
  const dir = options.dir ?? (await makeTempDir(t));
  const host = await startSimHost({ bootDelayMs: 20, removeDelayMs: 20, shutdownDelayMs: 10, ...options, dir });
  defer(t, () => host.stop());
  return host;
}

// A loopback TCP port that was free a moment ago (bind 0, read, close).
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return address.port;
}
