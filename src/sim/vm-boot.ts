// The simulated guest's boot: the boot.progress stages a real guest reports (docs/dstack.md §2.3), spread
// over the configured boot delay, with the app-key request in the middle. A KMS-mode guest asks
// the auth webhook like the real KMS would, and on a denial reports boot.error and powers off.
// A gateway-enabled guest registers with dstack-gateway after its keys; as at upstream HEAD
// (dstack-util system_setup.rs, ef05a83a) a failure there is a boot.error and boot goes on.
// Released images (≤ 0.5.11) power off instead; the simulator follows HEAD.
import { createHash, randomBytes } from 'node:crypto';
import type { Scheduler } from './scheduler.ts';
import type { EnvEntry } from '../secrets/dotenv.ts';
import { pushEvent, type SimVm } from './vm-record.ts';
import { hashCompose, parseAppCompose, type AppCompose } from './vm-rules.ts';

// What the KMS forwards to the webhook for an app boot.
export type AppKeyRequest = { appId: string; composeHash: string; osImageHash: string; instanceId: string };

// The webhook's verdict, with the gateway app id the KMS hands the guest (GetAppKey
// `gateway_app_id`, from auth-config.json `gatewayAppId`; absent or "" when none is set).
export type AppKeyDecision = { isAllowed: boolean; reason: string; gatewayAppId?: string };

// Ask for app keys (the host wires this to `POST <webhook>/bootAuth/app`).
export type RequestAppKeys = (request: AppKeyRequest) => Promise<AppKeyDecision>;

// What the guest's gateway step knows: the app keys' gateway app id (no keys, no id), its
// instance id, and the VM configuration's gateway_urls (the VM's own, else the VMM's default).
export type GatewaySetupInput = { gatewayAppId: string; instanceId: string; gatewayUrls: string[] };

// The guest's `GatewayContext::setup`: resolves to undefined once registered, or to the error
// chain the guest puts after "registration failed, the app has no ingress route: ".
export type SetupGateway = (vm: SimVm, input: GatewaySetupInput) => Promise<string | undefined>;

// What a boot needs from the VMM around it.
export type BootDeps = {
  scheduler: Scheduler;
  bootDelayMs: number;
  maxEvents: number;
  requestAppKeys: RequestAppKeys;
  osImageHashOf: (vm: SimVm) => string;
  kmsUrlsOf: (vm: SimVm) => string[];
  gatewayUrlsOf: (vm: SimVm) => string[];
  setupGateway: SetupGateway;
  changed: (vm: SimVm) => void;
  // The guest failed and powered off: the process ends while the started flag stays set.
  powerOff: (vm: SimVm) => void;
  // A guest that hangs at boot (a fault): it reports no further stage.
  isStalled: (vm: SimVm) => boolean;
  // Decrypt encrypted_env with the app's key (throws when it cannot).
  openEnv: (vm: SimVm) => EnvEntry[];
};

const KEYS_STAGE = 'requesting app keys';
const DISK_READY_STAGE = 'data disk ready';
const GATEWAY_STAGE = 'setting up dstack-gateway';
// dstack-util's boot.error text for any failure of the gateway step.
const GATEWAY_BOOT_ERROR = 'dstack-gateway registration failed, the app has no ingress route';

// The boot.progress values in the order the guest reports them.
export function bootStages(compose: AppCompose, firstBoot: boolean): string[] {
  return [
    'init-script',
    firstBoot ? 'initializing data disk' : 'mounting data disk',
    KEYS_STAGE,
    DISK_READY_STAGE,
    ...(compose.gatewayEnabled ? [GATEWAY_STAGE] : []),
    'setting up docker',
    'pre-launch',
    compose.runner === 'bash' ? 'running main script' : 'starting containers',
    'done',
  ];
}

// Run one boot of `vm`, whose process was just launched. Every step first checks that this
// boot is still the current one, so a stop, crash or VMM restart silently ends it.
export function runBoot(vm: SimVm, deps: BootDeps): void {
  const generation = vm.generation;
  const alive = (): boolean => vm.running && vm.generation === generation;
  // The guest reads and measures app-compose.json once, at boot; UpdateVm later changes nothing
  // for this boot. The file was validated when it was written.
  const composeFile = vm.config.compose_file;
  const compose = parseAppCompose(composeFile);
  const reusableDisk = compose.keyProvider !== 'none';
  const firstBoot = !reusableDisk || vm.instanceSeed === undefined;
  const seed = firstBoot ? randomBytes(20).toString('hex') : (vm.instanceSeed as string);
  const instanceId = createHash('sha256').update(seed + vm.appId).digest('hex').slice(0, 40);
  // The host writes sys-config (gateway_urls among it) into the shared dir at launch.
  const gatewayUrls = deps.gatewayUrlsOf(vm);
  let gatewayAppId = '';
  const stages = bootStages(compose, firstBoot);
  const step = Math.max(1, Math.floor(deps.bootDelayMs / stages.length));
  const report = (event: string, body: string): void => {
    pushEvent(vm, event, body, deps.scheduler.clock.now(), deps.maxEvents);
    deps.changed(vm);
  };
  const fail = (message: string): void => {
    vm.bootError = message;
    report('boot.error', message);
    deps.scheduler.after(step, () => {
      if (alive()) deps.powerOff(vm);
    });
  };
  const advance = (index: number): void => {
    deps.scheduler.after(step, () => {
      const stage = stages[index];
      if (!alive() || stage === undefined || deps.isStalled(vm)) return;
      vm.bootProgress = stage;
      report('boot.progress', stage);
      if (stage === DISK_READY_STAGE) {
        vm.instanceId = instanceId;
        if (reusableDisk) vm.instanceSeed = seed;
        report('instance.info', JSON.stringify({ instance_id: instanceId, app_id: vm.appId }));
      }
      if (stage === GATEWAY_STAGE) {
        const setup = deps.setupGateway(vm, { gatewayAppId, instanceId, gatewayUrls });
        setup.catch((err: unknown) => (err instanceof Error ? err.message : String(err))).then((error) => {
          if (!alive()) return;
          if (error !== undefined) {
            vm.bootError = `${GATEWAY_BOOT_ERROR}: ${error}`;
            report('boot.error', vm.bootError);
          }
          advance(index + 1);
        });
        return;
      }
      if (stage !== KEYS_STAGE) {
        advance(index + 1);
        return;
      }
      requestKeys(vm, compose, { composeHash: hashCompose(composeFile), instanceId }, deps).then((keys) => {
        if (!alive()) return;
        if ('error' in keys) return fail(`Failed to request app keys: ${keys.error}`);
        gatewayAppId = keys.gatewayAppId;
        const envError = openEnv(vm, compose, deps);
        if (envError !== undefined) return fail(envError);
        advance(index + 1);
      });
    });
  };
  advance(0);
}

// With the app keys, the guest opens encrypted_env and keeps only names the manifest allows
// (allowed_envs); it refuses to boot otherwise. Returns the guest's error, or undefined.
function openEnv(vm: SimVm, compose: AppCompose, deps: BootDeps): string | undefined {
  vm.envNames = [];
  if (vm.config.encrypted_env === '') return undefined;
  let entries: EnvEntry[];
  try {
    entries = deps.openEnv(vm);
  } catch (err) {
    return `Failed to decrypt env: ${err instanceof Error ? err.message : String(err)}`;
  }
  const forbidden = entries.map((e) => e.key).filter((k) => !compose.allowedEnvs.includes(k));
  if (forbidden.length > 0) return `Forbidden env keys (not in allowed_envs): ${forbidden.join(', ')}`;
  vm.envNames = entries.map((e) => e.key).sort();
  return undefined;
}

// The key step of each key provider; resolves to the guest's error chain, or to the keys' gateway
// app id (only the KMS hands one out; a local key provider's keys carry none).
async function requestKeys(
  vm: SimVm,
  compose: AppCompose,
  measured: { composeHash: string; instanceId: string },
  deps: BootDeps,
): Promise<{ error: string } | { gatewayAppId: string }> {
  if (compose.keyProvider === 'tpm') return { error: 'Tpm key provider is not supported' };
  if (compose.keyProvider !== 'kms') return { gatewayAppId: '' };
  if (deps.kmsUrlsOf(vm).length === 0) return { error: 'No KMS URLs are set' };
  try {
    const decision = await deps.requestAppKeys({
      appId: vm.appId,
      osImageHash: deps.osImageHashOf(vm),
      ...measured,
    });
    if (decision.isAllowed) return { gatewayAppId: decision.gatewayAppId ?? '' };
    return { error: `Failed to get app keys from KMS: Failed to get app key: Boot denied: ${decision.reason}` };
  } catch (err) {
    return { error: `Failed to get app keys from KMS: ${err instanceof Error ? err.message : String(err)}` };
  }
}
