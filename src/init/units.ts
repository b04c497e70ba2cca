// Init step 5: enable and start auth-simple, the SGX key provider (TDX only) and dstack-vmm, in
// that order, each only once the previous one is active (systemd/manager.ts waits on the job). A unit
// that already runs is left alone, with one exception each way:
// - auth-simple and the key provider are restarted when init just rewrote their env file (a
//   new port or image), which costs nothing but a moment of their service;
// - dstack-vmm is NEVER restarted: that stops every CVM (docs/dstack.md §5.7). A vmm.toml init had to
//   change while it runs is reported, and applies when the operator restarts it.
import type { Clock } from '../clock.ts';
import type { Logger } from '../log/logger.ts';
import { startUnitsInOrder } from '../systemd/manager.ts';
import type { SystemdManager } from '../systemd/types.ts';
import type { VmmClient } from '../vmm/client.ts';
import { VmmError } from '../vmm/errors.ts';
import type { Platform } from './platform.ts';

// The KMS's boot-authorisation webhook (loopback only).
export const AUTH_SIMPLE_UNIT = 'dstack-auth-simple.service';
// The SGX sealing key provider the KMS CVM gets its disk key from.
export const KEY_PROVIDER_UNIT = 'gramine-sealing-key-provider.service';
// dstack-vmm: restarting it stops every CVM.
export const VMM_UNIT = 'dstack-vmm.service';

// Every unit init may bring up, in start order (their After= lines agree). Destroy stops all of
// them whatever the platform now is, so a key provider left from a TDX past stops too.
export const HOST_UNITS: readonly string[] = [AUTH_SIMPLE_UNIT, KEY_PROVIDER_UNIT, VMM_UNIT];

// The units init brings up on `platform`: SNP has no SGX, so no key provider (upstream dstackup
// `resolve_key_provider`: "no local key provider (sev-snp)").
export function hostUnitsFor(platform: Platform): readonly string[] {
  return platform === 'tdx' ? HOST_UNITS : HOST_UNITS.filter((unit) => unit !== KEY_PROVIDER_UNIT);
}

// Which rendered files init wrote in this run.
export type RenderedChanges = { authSimpleEnv: boolean; keyProviderEnv: boolean; vmmToml: boolean };

// Units this run started, and units it restarted for a changed env file.
export type UnitsOutcome = { started: string[]; restarted: string[] };

// Bring the host units of `platform` up; see the module comment.
export async function startHostUnits(systemd: SystemdManager, platform: Platform, changes: RenderedChanges, log: Logger): Promise<UnitsOutcome> {
  const units = hostUnitsFor(platform);
  const links = await systemd.enableUnits([...units]);
  if (links.length > 0) log.info({ UNITS: units.join(' ') }, `enabled ${links.length} unit link(s), so the host units start at boot`);
  const wasActive = new Map<string, boolean>();
  for (const unit of units) wasActive.set(unit, (await systemd.unitState(unit)).ActiveState === 'active');
  const started = await startUnitsInOrder(systemd, [...units]);
  const restarted: string[] = [];
  for (const [unit, changed] of [[AUTH_SIMPLE_UNIT, changes.authSimpleEnv], [KEY_PROVIDER_UNIT, changes.keyProviderEnv]] as const) {
    if (!changed || wasActive.get(unit) !== true) continue;
    await systemd.restartUnit(unit);
    restarted.push(unit);
    log.info({ UNIT: unit }, `restarted ${unit}: its environment file changed`);
  }
  if (changes.vmmToml && wasActive.get(VMM_UNIT) === true) {
    log.warn(
      { UNIT: VMM_UNIT },
      'vmm.toml changed while dstack-vmm runs; the VMM reads it only when it starts, and restarting it stops every CVM (they boot again afterwards). ' +
        'Run `systemctl restart dstack-vmm` when that is acceptable; init never does',
    );
  }
  for (const unit of started) log.info({ UNIT: unit }, `started ${unit}`);
  return { started, restarted };
}

// Wait until dstack-vmm answers Version: systemd calls a simple service active as soon as it is
// exec'd, before its socket listens. Only "nothing listens yet" is retried.
export async function waitVmmAnswering(vmm: VmmClient, clock: Clock, timing: { timeoutMs: number; pollMs: number }): Promise<void> {
  const deadline = clock.now() + timing.timeoutMs;
  for (;;) {
    try {
      await vmm.version();
      return;
    } catch (err) {
      const waiting = err instanceof VmmError && err.code === 'VMM_UNREACHABLE';
      if (!waiting || clock.now() >= deadline) throw err;
    }
    await clock.sleep(timing.pollMs);
  }
}
