// `x-dstack:` — per-app overrides inside the compose file (compose ignores `x-` keys). Strict on
// purpose: a misspelt key silently dropped would deploy with defaults the operator did not want.
import * as z from 'zod';
import { checkGpuRequest, GpusSchema } from './gpus.ts';
import { sizeProblem } from './limits.ts';
import type { SizeKey } from './limits.ts';
import { errorAt } from './source.ts';
import type { Source } from './source.ts';

const KEYS = ['vcpu', 'memory', 'disk', 'image', 'kms', 'gateway', 'public_logs', 'public_sysinfo', 'ports', 'gpus'] as const;

// The guest image is a directory name under the VMM's image path (docs/dstack.md §2.1).
export const IMAGE_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

const size = z.union([z.number(), z.string()], { error: 'must be a number or a size like "2G"' });
const flag = z.boolean({ error: 'must be true or false' });

const OverridesSchema = z.strictObject(
  {
    vcpu: z.number({ error: 'must be a whole number ≥ 1' }).optional(),
    memory: size.optional(),
    disk: size.optional(),
    image: z
      .string({ error: 'must be an image directory name' })
      .regex(IMAGE_NAME, { error: 'must be 1-64 characters of A-Z a-z 0-9 _ . -' })
      .refine((name) => !name.includes('..'), { error: 'must not contain ".."' })
      .optional(),
    kms: flag.optional(),
    gateway: flag.optional(),
    public_logs: flag.optional(),
    public_sysinfo: flag.optional(),
    ports: z.array(z.unknown(), { error: 'must be a list of port specs' }).optional(),
    gpus: GpusSchema.optional(),
  },
  { error: 'must be a mapping of overrides' },
);

// The overrides as written, with sizes checked and converted: memory in MB, disk in GB.
export type Overrides = Omit<z.infer<typeof OverridesSchema>, 'memory' | 'disk'> & { memory?: number; disk?: number };

// Read `x-dstack` (absent or empty means no overrides); throws APP_XDSTACK_KEY / APP_XDSTACK_VALUE.
export function parseOverrides(source: Source, raw: unknown): Overrides {
  if (raw === undefined || raw === null) return {};
  const result = OverridesSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    if (issue?.code === 'unrecognized_keys') {
      const key = issue.keys[0] ?? '';
      throw errorAt(source, 'APP_XDSTACK_KEY', ['x-dstack', key], `unknown key; x-dstack accepts ${KEYS.join(', ')}`);
    }
    const path = ['x-dstack', ...(issue?.path ?? []).filter((step) => typeof step !== 'symbol')];
    throw errorAt(source, 'APP_XDSTACK_VALUE', path, `${issue?.message ?? 'is invalid'}`);
  }
  const { vcpu, memory, disk, gpus, ...rest } = result.data;
  const overrides: Overrides = { ...rest };
  if (gpus !== undefined) overrides.gpus = checkGpuRequest(source, gpus);
  if (vcpu !== undefined) overrides.vcpu = checkSize(source, 'vcpu', vcpu, vcpu);
  if (memory !== undefined) overrides.memory = checkSize(source, 'memory', memory, toUnits(memory, 1));
  if (disk !== undefined) overrides.disk = checkSize(source, 'disk', disk, toUnits(disk, 1024));
  return overrides;
}

const MB_PER_UNIT: Record<string, number> = { K: 1 / 1024, M: 1, G: 1024, T: 1024 * 1024 };

// A plain number is already in the key's unit; a string like "512M", "2G", "1.5GiB" converts.
// NaN when the string is no size at all (sizeProblem then says what to write).
function toUnits(value: number | string, mbPerUnit: number): number {
  if (typeof value === 'number') return value;
  const match = /^\s*(\d+(?:\.\d+)?)\s*(?:([KMGT])(?:i?B)?)?\s*$/i.exec(value);
  if (!match?.[1]) return Number.NaN;
  const scale = match[2] ? (MB_PER_UNIT[match[2].toUpperCase()] ?? 0) / mbPerUnit : 1;
  return Number(match[1]) * scale;
}

// `amount` when a CVM can have it; else APP_XDSTACK_VALUE naming the key, the value and the limit.
function checkSize(source: Source, key: SizeKey, written: number | string, amount: number): number {
  const problem = sizeProblem(key, written, amount);
  if (problem !== undefined) throw errorAt(source, 'APP_XDSTACK_VALUE', ['x-dstack', key], problem);
  return amount;
}
