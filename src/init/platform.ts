// Which confidential-computing platform this host launches CVMs on: `[init] platform`, or with
// `auto` the host's CPU flags, by the rule upstream's dstackup and dstack-vmm both use
// (dstack-cli-core src/host.rs `Platform::detect`, vmm src/config.rs `resolve_from_cpuinfo`).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { InitSection } from './config-schema.ts';

// The two platforms, spelled as vmm.toml `[cvm] platform` spells them.
export type Platform = 'tdx' | 'amd-sev-snp';

// How the platform was chosen: set in supervisor.toml, found in the CPU flags, or neither flag
// was there and it fell back to TDX.
export type PlatformChoice = { platform: Platform; how: 'configured' | 'detected' | 'fallback' };

// The platform `cpuinfo` (the text of /proc/cpuinfo) advertises, undefined when neither flag is
// on a `flags` line. `sev_snp` is looked at first: the flags are vendor-exclusive, so a host
// with both cannot exist, and upstream resolves that case to SNP too.
export function platformFromCpuinfo(cpuinfo: string): Platform | undefined {
  const flags = new Set(
    cpuinfo
      .split('\n')
      .filter((line) => line.startsWith('flags'))
      .flatMap((line) => line.split(/\s+/)),
  );
  if (flags.has('sev_snp')) return 'amd-sev-snp';
  if (flags.has('tdx_host_platform')) return 'tdx';
  return undefined;
}

// The platform of `init`'s host. `auto` with neither flag (an unreadable cpuinfo included) is
// TDX, as in upstream's dstackup (`detect().unwrap_or(Tdx)`); the TDX preflight then says what
// the host lacks.
export async function resolvePlatform(init: InitSection): Promise<PlatformChoice> {
  if (init.platform !== 'auto') return { platform: init.platform, how: 'configured' };
  const cpuinfo = await readFile(join(init.sysroot, '/proc/cpuinfo'), 'utf8').catch(() => '');
  const detected = platformFromCpuinfo(cpuinfo);
  return detected === undefined ? { platform: 'tdx', how: 'fallback' } : { platform: detected, how: 'detected' };
}

// One line for the log and the preflight record: which platform, and why.
export function describePlatformChoice(choice: PlatformChoice): string {
  const why = { configured: 'set by [init] platform', detected: 'detected from the CPU flags in /proc/cpuinfo', fallback: 'neither sev_snp nor tdx_host_platform in /proc/cpuinfo; TDX as upstream defaults' }[choice.how];
  return `platform ${choice.platform} (${why})`;
}
