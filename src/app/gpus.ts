// `x-dstack.gpus`: which of the host's GPUs a CVM is given (issue 19). `all` is dstack-vmm's
// attach_mode "all" (every NVIDIA GPU of the host, `dstack deploy --ppcie`); a number asks for
// that many of the GPUs the VMM lists as free; a list names PCI addresses (`--gpu SLOT`).
import * as z from 'zod';
import { errorAt } from './source.ts';
import type { Source } from './source.ts';

// More than any single host holds (an HGX board has 8); a larger number is a slip.
export const MAX_GPUS = 64;

const GPUS_HINT = `must be all, a whole number of GPUs from 1 to ${MAX_GPUS}, or a list of PCI addresses like "0000:18:00.0"`;

// The key as written; addresses are checked and put in one form by checkGpuRequest.
const hint = { error: GPUS_HINT };
export const GpusSchema = z.union([z.literal('all'), z.number().int(hint).min(1, hint).max(MAX_GPUS, hint), z.array(z.string(hint), hint).min(1, hint)], hint);

// What an app asks for: 'all', a count, or PCI addresses in canonicalPciAddress form.
export type GpuRequest = z.infer<typeof GpusSchema>;

// [domain:]bus:device.function in hex, as lspci and sysfs print it; the domain is 4 digits, or 5
// and more under Intel VMD.
const PCI_ADDRESS = /^(?:([0-9a-f]{4,8}):)?([0-9a-f]{2}):([01][0-9a-f])\.([0-7])$/i;

// "18:00.0" and "0000:18:00.0" name the same device: lspci leaves the domain out on hosts that
// have only domain 0, sysfs never does. The sysfs form, lower case; undefined for no address.
export function canonicalPciAddress(text: string): string | undefined {
  const m = PCI_ADDRESS.exec(text.trim());
  if (!m) return undefined;
  return `${(m[1] ?? '0000').toLowerCase()}:${m[2]!.toLowerCase()}:${m[3]!.toLowerCase()}.${m[4]}`;
}

// The written value with every address checked; APP_XDSTACK_VALUE names the entry at fault.
export function checkGpuRequest(source: Source, value: GpuRequest): GpuRequest {
  if (!Array.isArray(value)) return value;
  const seen = new Set<string>();
  return value.map((written, i) => {
    const address = canonicalPciAddress(written);
    const path = ['x-dstack', 'gpus', i];
    if (address === undefined) {
      throw errorAt(source, 'APP_XDSTACK_VALUE', path, `${JSON.stringify(written)} is not a PCI address; write it as lspci or \`dstack-vmm lsgpu\` shows it ("0000:18:00.0" or "18:00.0")`);
    }
    if (seen.has(address)) throw errorAt(source, 'APP_XDSTACK_VALUE', path, `${address} is listed twice; name each GPU once`);
    seen.add(address);
    return address;
  });
}

// `2 GPUs`, `all GPUs`, `GPUs 0000:18:00.0, 0000:2a:00.0`: what an app asks for, for messages.
export function describeGpuRequest(request: GpuRequest): string {
  if (request === 'all') return 'all GPUs';
  if (typeof request === 'number') return `${request} GPU${request === 1 ? '' : 's'}`;
  return `GPU${request.length === 1 ? '' : 's'} ${request.join(', ')}`;
}
