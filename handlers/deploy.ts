import type { HandlerDeps } from './deps.ts';
import type { DesiredSpec } from './plan.ts';
import type { AppRecord } from '../src/state/record.ts';
import type { VmConfiguration } from '../src/vmm/messages.ts';
import { beginOperation, registerHash } from './intent.ts';
import { gpuConfigOf } from '../src/controller/gpu-allocator.ts';

// The CreateVm request for a spec: direct host ports, explicit app id and kms_urls, so the VM never
// depends on the VMM's global config (docs/design.md "Init" step 7), and the GPUs the pass granted.
export function vmConfigOf(spec: DesiredSpec, appId: string, encryptedEnv: string): VmConfiguration {
  return {
    encrypted_env: encryptedEnv,
    name: spec.name,
    image: spec.image,
    compose_file: spec.manifest,
    vcpu: spec.vcpu,
    memory: spec.memory,
    disk_size: spec.disk,
    ports: spec.ports,
    app_id: appId,
    kms_urls: spec.kmsUrls,
    gateway_urls: spec.gatewayUrls,
    ...(spec.gpuGrant ? { gpus: gpuConfigOf(spec.gpuGrant) } : {}),
  } as VmConfiguration;
}

// Deploy a new app: record the intent, register its hash, CreateVm. The boot is watched by later
// reconciles (await-boot), so no slot is held while a guest boots (rule 15). Each step is safe to repeat after a crash (rule 18).
export async function deployApp(spec: DesiredSpec, appId: string, prior: AppRecord | undefined, deps: HandlerDeps): Promise<AppRecord> {
  const fresh: AppRecord = { registeredHashes: [], phase: 'pending', ...prior, name: spec.name, file: spec.file, appId };
  // Usually registered ahead already (registerAhead), and then the phase goes straight to deploying.
  const ahead = fresh.registeredHashes.includes(spec.composeHash);
  const base = await beginOperation(fresh, { op: 'deploy', toHash: spec.composeHash, phase: ahead ? 'deploying' : 'registering' }, deps);
  let registered = await registerHash(base, spec.composeHash, deps);
  if (!ahead) {
    registered = { ...registered, phase: 'deploying' };
    await deps.records.save(registered);
    await deps.report({ app: spec.name, file: spec.file, phase: 'deploying', record: registered });
  }

  const sealed = spec.env ? await deps.sealEnv(spec.name, appId, spec.env.entries) : '';
  const { id } = await deps.vmm.createVm(vmConfigOf(spec, appId, sealed));
  // The VM holds these env values from now on; recorded here, not when the boot is confirmed, or
  // every reconcile until then would see an env change and upgrade again (issue 13).
  const created: AppRecord = { ...registered, vmId: id, envHash: spec.env?.hash };
  await deps.records.save(created);

  return created;
}
