import type { PortMapping } from '../vmm/messages.ts';
import type { EnvEntry } from '../secrets/dotenv.ts';
import type { AppWarning } from '../app/warning.ts';

// What the files say about one app name, as the controller has established it.
export type Desired =
  // A settled, valid file: this spec should run.
  | { kind: 'app'; spec: DesiredSpec }
  // The file exists but must not be acted on (invalid, unsettled, conflicting, refused, dir fault):
  // whatever runs keeps running (APPS-DIR rules 3, 5, 8, 12).
  | { kind: 'hold' }
  // The file's deletion is confirmed (rule 7): tear down what we own.
  | { kind: 'gone' };

// The parts of a built app spec that decide what the VM must look like.
export type DesiredSpec = {
  name: string;
  file: string;
  manifest: string;
  composeHash: string;
  ports: PortMapping[];
  image: string;
  vcpu: number;
  memory: number;
  disk: number;
  kmsUrls: string[];
  // What a CVM will not honour as written (issue 8); shown in the journal and in status.
  warnings: AppWarning[];
  // NAME.env beside the compose file: its values (sealed for the app at deploy time, never
  // stored) and a hash of them, to notice a value-only change.
  env?: { entries: EnvEntry[]; hash: string };
};
