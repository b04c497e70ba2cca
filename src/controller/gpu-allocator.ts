// Each pass, after the plan: which GPUs every app that asks for some gets (gpu-claims.ts decides),
// from the VMs the pass knows and, only when an app needs GPUs it does not already have, the
// VMM's ListGpus. An app granted GPUs gets them in its spec; one that cannot get them is held,
// pending with the reason, and is looked at again on every pass (a teardown, a resync).
import { createHash } from 'node:crypto';
import { appIdOf } from '../app/manifest.ts';
import { describeError } from '../errors.ts';
import type { GpuConfig, ListGpusResponse, VmInfo } from '../vmm/messages.ts';
import type { AppVerdict, ManagedApp } from './desired.ts';
import { GPU_ATTACH_ALL_REFUSED, GPU_UNAVAILABLE, keepsCurrentGpus, resolveGpuClaims, type GpuClaimant, type GpuGrant, type GpuHolder } from './gpu-claims.ts';
import type { DesiredSpec } from './spec.ts';
import { canonicalPciAddress } from '../app/gpus.ts';

export type GpuAllocatorDeps = {
  listGpus(): Promise<ListGpusResponse>;
  // The VMs as the pass knows them (the last full Status, updated by narrower ones).
  vms(): readonly VmInfo[];
};

export type GpuAllocator = {
  // Give the apps of `verdicts` their GPUs, or hold them back; in place.
  claim(verdicts: Map<string, AppVerdict<DesiredSpec>>, managed: ReadonlyMap<string, ManagedApp>): Promise<void>;
};

// The GPUs a VM is configured with, when it has any.
export function grantOfVm(vm: VmInfo | undefined): GpuGrant | undefined {
  const gpus = vm?.configuration?.gpus;
  if (!gpus || (gpus.attach_mode !== 'all' && gpus.gpus.length === 0)) return undefined;
  return { mode: gpus.attach_mode === 'all' ? 'all' : 'listed', slots: gpus.gpus.map((g) => g.slot) };
}

// The wire form of a grant (CreateVm, UpdateVm); none is attach_mode "listed" with no GPU, which
// is how `vmm-cli.py update --no-gpus` detaches them.
export function gpuConfigOf(grant: GpuGrant | undefined): GpuConfig {
  if (grant?.mode === 'all') return { attach_mode: 'all', gpus: [] };
  return { attach_mode: 'listed', gpus: (grant?.slots ?? []).map((slot) => ({ slot })) };
}

// Create the allocator; it remembers what it granted, for apps whose VM does not show it yet.
export function createGpuAllocator(deps: GpuAllocatorDeps): GpuAllocator {
  const granted = new Map<string, { request: string; grant: GpuGrant }>();
  return {
    async claim(verdicts, managed) {
      const asking = [...verdicts].flatMap(([name, v]) => (v.kind === 'app' && v.spec.gpus !== undefined ? [{ name, verdict: v, spec: v.spec, request: v.spec.gpus }] : []));
      for (const name of granted.keys()) if (!asking.some((a) => a.name === name)) granted.delete(name);
      if (asking.length === 0) return;
      const vms = deps.vms();
      const byId = new Map(vms.map((vm) => [vm.id, vm]));
      // The claimant's own VM: the one its record names, else the one adoption would take over.
      const ownVm = (name: string, spec: DesiredSpec): VmInfo | undefined => {
        const id = managed.get(name)?.vmId;
        return id !== undefined ? byId.get(id) : vms.find((vm) => vm.name === name && vm.app_id === appIdOf(spec.composeHash));
      };
      const withVm = asking.map((a) => ({ ...a, vm: ownVm(a.name, a.spec) }));
      const claimants: GpuClaimant[] = withVm.map(({ name, spec, request, vm }) => {
        const current = grantOfVm(vm);
        const running = vm?.configuration ? createHash('sha256').update(vm.configuration.compose_file, 'utf8').digest('hex') : undefined;
        const previous = granted.get(name);
        return {
          name,
          file: spec.file,
          request,
          ...(current ? { current } : {}),
          unchanged: running !== undefined && (running === spec.composeHash || running === spec.earlierForm?.composeHash),
          ...(previous && previous.request === JSON.stringify(request) ? { previous: previous.grant } : {}),
        };
      });
      const { held, foreign } = holdersOf(vms, managed, new Set(withVm.flatMap((c) => (c.vm ? [c.vm.id] : []))));
      // Apps whose VM keeps what it has need nothing from the VMM: a steady host asks it nothing.
      const settled = claimants.every(keepsCurrentGpus);
      let listed: { gpus: ListGpusResponse['gpus']; allowAttachAll: boolean } | undefined;
      let error: string | undefined;
      if (!settled) {
        try {
          const reply = await deps.listGpus();
          listed = { gpus: reply.gpus, allowAttachAll: reply.allow_attach_all };
        } catch (err) {
          error = describeError(err);
        }
      }
      const outcomes = resolveGpuClaims(claimants, { ...(listed ? { listed } : {}), ...(error === undefined ? {} : { error }), held, foreign });
      for (const { name, verdict, spec, request } of asking) {
        const outcome = outcomes.get(name);
        if (outcome?.kind === 'grant') {
          granted.set(name, { request: JSON.stringify(request), grant: outcome.grant });
          verdicts.set(name, { ...verdict, spec: { ...spec, gpuGrant: outcome.grant } });
          continue;
        }
        granted.delete(name);
        if (outcome === undefined) continue;
        const why = outcome.kind === 'wait' ? ('gpu' as const) : ('invalid' as const);
        verdicts.set(name, { kind: 'hold', why, reason: outcome.reason, code: outcome.kind === 'wait' ? GPU_UNAVAILABLE : GPU_ATTACH_ALL_REFUSED, fileHash: verdict.fileHash });
      }
    },
  };
}

// Who holds each GPU named by a VM that is no claimant's: an app of ours (its VM keeps them, held
// file or not; every VM of the name of an app whose record cannot be read, as for its ports) or
// a VM we do not manage.
function holdersOf(vms: readonly VmInfo[], managed: ReadonlyMap<string, ManagedApp>, claimantVms: ReadonlySet<string>): { held: Map<string, GpuHolder>; foreign: Map<string, GpuHolder> } {
  const owner = new Map([...managed].flatMap(([name, m]) => (m.vmId === undefined ? [] : [[m.vmId, { app: name, file: m.file }] as const])));
  const unreadable = new Map([...managed].flatMap(([name, m]) => (m.unreadable ? [[name, { app: name, file: m.file }] as const] : [])));
  const held = new Map<string, GpuHolder>();
  const foreign = new Map<string, GpuHolder>();
  for (const vm of vms) {
    if (claimantVms.has(vm.id)) continue;
    const app = owner.get(vm.id) ?? unreadable.get(vm.name);
    for (const slot of grantOfVm(vm)?.slots ?? []) {
      const address = canonicalPciAddress(slot) ?? slot;
      if (app) held.set(address, app);
      else foreign.set(address, { vm: vm.name, id: vm.id });
    }
  }
  return { held, foreign };
}
