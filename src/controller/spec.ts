import type { EnvEntry } from '../secrets/dotenv.ts';
import type { AppSpec } from '../app/spec.ts';
import type { GpuGrant } from './gpu-claims.ts';

// What the files say about one app name, as the controller has established it.
export type Desired =
  // A settled, valid file: this spec should run.
  | { kind: 'app'; spec: DesiredSpec; renamedFrom?: string }
  // The file exists but must not be acted on (invalid, unsettled, conflicting, refused, dir fault):
  // whatever runs keeps running (docs/apps-dir.md rules 3, 5, 8, 12). `fileMissing`: it is gone and
  // its delete not yet confirmed (rule 7).
  | { kind: 'hold'; fileMissing?: boolean }
  // The file's deletion is confirmed (rule 7): tear down what we own.
  | { kind: 'gone'; renamedTo?: string };

// A built app spec (manifest, hash, ports, size, warnings) plus what the host adds to it.
export type DesiredSpec = Pick<
  AppSpec,
  'name' | 'file' | 'manifest' | 'composeHash' | 'ports' | 'image' | 'vcpu' | 'memory' | 'disk' | 'warnings' | 'gateway' | 'gatewayWanted' | 'earlierForm' | 'gpus'
> & {
  // The GPUs this pass gave the app (src/controller/gpu-claims.ts); absent when it asks for none.
  gpuGrant?: GpuGrant;
  kmsUrls: string[];
  // The VM's own gateway_urls: where its guest registers, when the app uses the gateway; else [].
  gatewayUrls: string[];
  // When the app uses the gateway: its names are `<app id>-<port>.<baseDomain>` on `proxyPort`.
  https?: { baseDomain: string; proxyPort: number };
  // NAME.env beside the compose file: its values (sealed for the app at deploy time, never
  // stored) and a hash of them, to notice a value-only change.
  env?: { entries: EnvEntry[]; hash: string };
};
