import type { Clock } from '../src/clock.ts';
import type { VmmClient } from '../src/vmm/client.ts';
import type { AppRecord } from '../src/state/record.ts';
import type { Phase } from '../src/status/phase.ts';
import type { Departure } from '../src/controller/reporter.ts';
import type { EnvEntry } from '../src/secrets/dotenv.ts';

// Everything a handler may touch, passed in so tests can give it a simulator and a temp dir.
export type HandlerDeps = {
  vmm: Pick<VmmClient, 'createVm' | 'updateVm' | 'startVm' | 'stopVm' | 'shutdownVm' | 'removeVm' | 'status'>;
  allowlist: {
    addHash(appId: string, hash: string): Promise<void>;
    setHashes(appId: string, hashes: string[]): Promise<void>;
    removeApp(appId: string): Promise<void>;
    hashesOf(appId: string): Promise<string[] | undefined>;
  };
  records: {
    save(record: AppRecord): Promise<void>;
    remove(name: string): Promise<void>;
  };
  // Publish a phase change for an app (status file, journal line, STATUS= counts).
  report(update: PhaseReport): Promise<void>;
  // Encrypt NAME.env's entries for the app, with its KMS-signed public key (hex for encrypted_env).
  sealEnv(app: string, appId: string, entries: EnvEntry[]): Promise<string>;
  clock: Clock;
  timing: { pollMs: number; bootTimeoutMs: number; shutdownTimeoutMs: number; removeTimeoutMs: number };
};

export type PhaseReport = {
  app: string;
  file: string;
  // 'removed': a teardown is over; 'gone': nothing of the app was ours. Its status disappears.
  phase: Phase | Departure;
  record?: AppRecord;
  error?: string;
  // The stable code of `error` (src/errors.ts errorCodeOf), for status files (issue 15).
  code?: string;
  urls?: string[];
  // The GPUs the app's VM now holds, canonical PCI addresses (with the operation that gave them).
  gpus?: string[];
};
