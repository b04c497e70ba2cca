// The most a CVM can ever be given, on any host (issue 13 item 5). dstack-vmm takes vcpu, memory
// (MB) and disk_size (GB) as uint32 and checks none of them, so a typo like `memory: 9999999G`
// went out as a request the client refused to encode, or a VM QEMU cannot launch, and was
// retried for ever. A value beyond these is a slip, never a size: the file is refused instead.

// One sizing key: its ceiling, in the unit the VMM takes.
export type CvmLimit = { max: number; unit: string; example: string; spelled?: string };

// vcpu: 1024 is KVM's default per-VM vCPU ceiling on x86_64 (KVM_MAX_VCPUS).
// memory: 64 TiB in MB; a CVM's memory is private host RAM that cannot be overcommitted, and
// no x86 server holds that much. disk: 64 TiB in GB, one image file in the VMM's run_path.
export const CVM_LIMITS = {
  vcpu: { max: 1024, unit: 'vCPUs', example: '2' },
  memory: { max: 64 * 1024 * 1024, unit: 'MB', example: '2048 or "2G"', spelled: '64T' },
  disk: { max: 64 * 1024, unit: 'GB', example: '20 or "20G"', spelled: '64T' },
} as const satisfies Record<string, CvmLimit>;

// A sizing key of `x-dstack` and `[apps]`.
export type SizeKey = keyof typeof CVM_LIMITS;

// Why `amount` (converted from `written`) cannot size a CVM, as one clause; undefined when it can.
export function sizeProblem(key: SizeKey, written: number | string, amount: number): string | undefined {
  const limit: CvmLimit = CVM_LIMITS[key];
  const shown = typeof written === 'string' ? JSON.stringify(written) : String(written);
  if (amount > limit.max) {
    const converted = typeof written === 'string' ? ` (${amount} ${limit.unit})` : ` ${limit.unit}`;
    const ceiling = limit.spelled ? `${limit.spelled} (${limit.max} ${limit.unit})` : `${limit.max} ${limit.unit}`;
    return `${shown}${converted} is more than ${ceiling}, the most a CVM can have; give at most ${limit.spelled ?? limit.max}`;
  }
  if (!Number.isInteger(amount) || amount < 1) return `${shown} is not a whole number of ${limit.unit} ≥ 1 (write e.g. ${limit.example})`;
  return undefined;
}

