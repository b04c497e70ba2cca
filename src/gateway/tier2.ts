// Tier 2 as a loop beside the apps: reads gateway.d/gateway.toml, takes one step at a time
// (reconcile.ts), says per app whether its spec may use the gateway (switch.ts), and reports where
// it stands in `<state_dir>/status/_gateway.json` and one journal line per change. Like an app
// file, an invalid gateway.toml holds everything as it is, and a removed one counts only once its
// absence is confirmed; then apps move back to direct ports before the gateway CVM is stopped.
import type { Clock } from '../clock.ts';
import { describeError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import type { VmInfo } from '../vmm/messages.ts';
import { describeGatewayView, type GatewayHostsView, type RegisteringVm } from './app-view.ts';
import type { GatewayLoad } from './config.ts';
import type { DnsStatus, DnsTarget } from './dns-check.ts';
import { stepDisable, stepEnable, type GatewayOutcome, type GatewayPlan, type GatewayStepDeps } from './reconcile.ts';
import { freshPatience } from './cert-patience.ts';
import { planSwitch, type SwitchApp } from './switch.ts';

// What an app's spec is built with while Tier 2 is on or draining (src/app/spec.ts Tier2), plus
// where its guest registers and the names it gets.
export type AppTier2 = { apps: 'opt-in' | 'all'; serving: boolean; urls: string[]; baseDomain: string; proxyPort: number };

export type TierSettings = Omit<AppTier2, 'serving'>;

// `dns`: the last check of `*.<domain>` while Tier 2 is on and the gateway has served (null before).
export type GatewayStatus = Omit<GatewayOutcome, 'hosts'> & { domain: string | null; switching: string | null; dns: DnsStatus | null };

export type Tier2Deps = {
  load: () => Promise<GatewayLoad>;
  // The plan of an enabled gateway, with its kept secrets (created on first use).
  plan: (load: Extract<GatewayLoad, { kind: 'on' }>) => Promise<GatewayPlan & { gatewayUrls: string[] }>;
  // The gateway's app id if secrets were ever made (a gateway to stop), else undefined.
  knownAppId: () => Promise<string | undefined>;
  vmName: string;
  // The settings apps were switched with, kept across restarts (a restart while apps move back
  // still knows their gateway URLs); undefined clears them.
  remember: (on: TierSettings | undefined) => Promise<void>;
  recall: () => Promise<TierSettings | undefined>;
  listVms: () => Promise<VmInfo[]>;
  // Every app with a valid file: whether it asks for the gateway (its VM is found in listVms),
  // and whether an operation of it is under way (its status is not `running`).
  wanted: () => Array<{ name: string; wanted: boolean; busy: boolean }>;
  step: Omit<GatewayStepDeps, 'memory'>;
  // Where `*.<domain>` points (checks spaced out and logged by the caller, dns-check.ts).
  dns: (target: DnsTarget) => Promise<DnsStatus>;
  // The per-app view changed: rebuild the specs (a full pass of the controller).
  changed: () => void;
  writeStatus: (status: GatewayStatus) => Promise<void>;
  log: Logger;
  clock: Clock;
  timing: { pollMs: number; resyncMs: number; deleteConfirmMs: number; backoffMaxMs: number };
};

export type Tier2 = {
  // Before the apps' first pass: if Tier 2 was in use, each app stays where its VM is until the
  // first Tier 2 pass says otherwise (found by the kill -9 test: a restart built every spec
  // without the gateway, and all gateway apps were moved at once).
  prime: () => Promise<void>;
  // Undefined while Tier 2 is off: apps are built as without a gateway.
  forApp: (app: string) => AppTier2 | undefined;
  // For an app VM whose guest could not register: what the gateway lists for it (app-view.ts);
  // undefined while Tier 2 is off.
  viewOf: (vm: RegisteringVm) => string | undefined;
  poke: () => void;
  idle: () => Promise<void>;
  stop: () => Promise<void>;
};

const gatewayEnabledOf = (vm: VmInfo): boolean => {
  try {
    return (JSON.parse(vm.configuration?.compose_file ?? '{}') as { gateway_enabled?: unknown }).gateway_enabled === true;
  } catch {
    return false;
  }
};

// The pinned gateway image serves only certificates its certbot got through DNS-01; a wildcard
// signed by the host CA needs its static-cert mode ([core.proxy] cert_chain and cert_key inside
// the CVM), which its compose does not expose (docs/dstack.md, Gateway).
const SELF_SIGNED_MISSING =
  '[certificate] mode = "self-signed" (and no-domain mode, which implies it) is not supported yet: the gateway image this release pins ' +
  'can serve only certificates it obtains through DNS-01; set domain and mode = "acme" with a Cloudflare token. Nothing was deployed; apps stay on their direct ports';

// Per VM name, whether its manifest uses the gateway: where each app stays unless moved.
function mirror(vms: readonly VmInfo[]): Map<string, boolean> {
  return new Map(vms.filter((v) => v.status !== 'removing').map((v) => [v.name, gatewayEnabledOf(v)]));
}

// Every VM whose guest uses the gateway, whatever its app's file says now (held, settling, gone):
// the gateway is stopped only once none does (found by the kill -9 test: right after a restart,
// files still settling were not counted, and the gateway was stopped under four apps).
function gatewayUsers(vms: readonly VmInfo[]): string[] {
  return vms.filter((v) => v.status !== 'removing' && gatewayEnabledOf(v)).map((v) => v.name);
}

export function createTier2(deps: Tier2Deps): Tier2 {
  const memory: GatewayStepDeps['memory'] = { cert: freshPatience() };
  // The last valid gateway.toml: kept while the file is invalid or its removal unconfirmed.
  let on: TierSettings | undefined;
  let active = false;
  let perApp = new Map<string, boolean>();
  // For an app the last pass did not see (a file just added): on the gateway only while it serves.
  let newcomers = false;
  let missingSince: number | undefined;
  let failures = 0;
  let lastLine: string | undefined;
  let lastWritten: string | undefined;
  let dns: DnsStatus | null = null;
  let hostsView: GatewayHostsView | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;
  let timer: { cancel: () => void } | undefined;

  const schedule = (ms: number): void => {
    timer?.cancel();
    const abort = new AbortController();
    timer = { cancel: () => abort.abort() };
    deps.clock.sleep(ms, abort.signal).then(() => poke(), () => undefined);
  };

  const switchApps = (vms: readonly VmInfo[]): SwitchApp[] =>
    deps.wanted().map(({ name, wanted, busy }) => {
      const vm = vms.find((v) => v.name === name && v.status !== 'removing');
      return { name, wanted, vm: vm && { gatewayEnabled: gatewayEnabledOf(vm), settled: !busy && vm.status === 'running' && vm.boot_progress === 'done' && !vm.boot_error } };
    });

  // Settings apps are built with from now on, remembered when they change; true if they did.
  async function keep(settings: TierSettings): Promise<boolean> {
    if (JSON.stringify(settings) === JSON.stringify(on)) return false;
    await deps.remember(settings);
    on = settings;
    return true;
  }

  async function pass(): Promise<number> {
    const load = await deps.load();
    let settingsChanged = false;
    // Asked for only when Tier 2 is in use: a host without gateway.d makes no VMM call here.
    let listed: Promise<VmInfo[]> | undefined;
    const vmsNow = () => (listed ??= deps.listVms());
    // Where apps move: to the gateway once it serves, back once its removal is confirmed; in every
    // other state (starting, a gateway outage, an invalid file, a removal not yet confirmed) each
    // stays where its VM is, and a new app deploys on direct ports.
    let direction: boolean | undefined;
    let outcome: GatewayOutcome;
    if (load.kind === 'on' && load.config.certificate.mode === 'self-signed') {
      on ??= await deps.recall();
      active = on !== undefined;
      outcome = { phase: 'invalid', serving: false, reason: SELF_SIGNED_MISSING };
    } else if (load.kind === 'on') {
      missingSince = undefined;
      const plan = await deps.plan(load);
      const settingsFor = (baseDomain: string): TierSettings => ({ apps: load.config.apps, baseDomain, proxyPort: load.config.proxy_port, urls: plan.gatewayUrls });
      // Apps keep the names they have until the gateway serves the new domain's certificate (the
      // step keeps the old ZT domain configured until then): a changed domain is in place, no app
      // is restarted, since nothing an app's VM is given names the domain (its gateway_urls are
      // the gateway's RPC address); only the names in its status follow.
      if (await keep(settingsFor(on?.baseDomain ?? load.baseDomain))) settingsChanged = true;
      active = true;
      outcome = await stepEnable(plan, await vmsNow(), { ...deps.step, memory });
      if (outcome.serving) {
        if (await keep(settingsFor(load.baseDomain))) settingsChanged = true;
        direction = true;
        dns = await deps.dns({ domain: load.baseDomain, publicIp: load.config.public_ip });
      }
    } else if (load.kind === 'invalid') {
      on ??= await deps.recall();
      active = on !== undefined;
      outcome = { phase: 'invalid', serving: false, reason: `${load.error.message}; the gateway and its apps are left as they are until it is fixed` };
    } else {
      const appId = await deps.knownAppId();
      const now = deps.clock.now();
      missingSince ??= now;
      on ??= await deps.recall();
      active = on !== undefined;
      if (appId === undefined) {
        outcome = { phase: 'off', serving: false, reason: 'no gateway.toml' };
      } else if (on !== undefined && now - missingSince < deps.timing.deleteConfirmMs) {
        outcome = { phase: 'draining', serving: false, reason: 'gateway.toml is missing; confirming the removal' };
      } else {
        direction = false;
        const vms = await vmsNow();
        // An app whose switch back is under way (its manifest already says so) still counts.
        const moving = planSwitch(false, switchApps(vms)).switching;
        const users = [...new Set([...gatewayUsers(vms), ...(moving ? [moving] : [])])];
        outcome = await stepDisable(deps.vmName, appId, users, vms, deps.step);
        if (outcome.phase === 'stopped' && on !== undefined) {
          on = undefined;
          active = false;
          await deps.remember(undefined);
        }
      }
    }
    let plan: { serving: Map<string, boolean>; switching?: string | undefined } = { serving: new Map() };
    if (active) {
      const vms = await vmsNow();
      // Every app stays where its VM is (whatever its file's verdict now: settling, held), unless
      // the switch moves it.
      const stay = mirror(vms);
      plan = direction === undefined ? { serving: stay } : planSwitch(direction, switchApps(vms));
      for (const [name, on] of stay) if (!plan.serving.has(name)) plan.serving.set(name, on);
    }
    const before = JSON.stringify([...perApp]);
    perApp = plan.serving;
    newcomers = direction === true;
    // A new domain or proxy port changes the specs (their status names) without moving an app.
    if (JSON.stringify([...perApp]) !== before || settingsChanged) deps.changed();
    if (load.kind !== 'on') dns = null;
    hostsView = active ? { phase: outcome.phase, reason: outcome.reason, ...(outcome.hosts ? { hosts: outcome.hosts } : {}) } : undefined;
    const { hosts: _hosts, ...shown } = outcome;
    await report({ ...shown, domain: on?.baseDomain ?? null, switching: plan.switching ?? null, dns });
    if (outcome.phase === 'failed') return Math.min(deps.timing.pollMs * 2 ** failures++, deps.timing.backoffMaxMs);
    // A gateway started again after a failure boots before it can fail again: the backoff keeps
    // growing through that boot (it restarted a guest that fails every boot at a fixed pace).
    if (outcome.phase !== 'booting') failures = 0;
    const settled = (outcome.phase === 'serving' || outcome.phase === 'off' || outcome.phase === 'stopped' || outcome.phase === 'invalid') && plan.switching === undefined;
    return settled ? deps.timing.resyncMs : deps.timing.pollMs;
  }

  // The status file is written whenever it would say something else; the journal gets one line
  // per phase and reason (a log tail that changes per attempt, or a DNS check, adds none here).
  async function report(status: GatewayStatus): Promise<void> {
    const written = JSON.stringify(status);
    if (written === lastWritten) return;
    lastWritten = written;
    const line = `${status.phase}: ${status.reason}${status.switching ? ` (moving ${status.switching})` : ''}`;
    if (line !== lastLine) {
      lastLine = line;
      // Waiting a moment for a certificate is the normal way to serving; the gateway's own refusal is not.
      const level = status.phase === 'failed' || status.phase === 'invalid' || (status.phase === 'certificate' && status.reason.startsWith('no certificate')) ? 'warn' : 'info';
      const tail = status.logTail === undefined ? {} : { BOOT_ERROR: status.bootError, LOG_TAIL: status.logTail };
      deps.log[level]({ APP: 'gateway', PHASE: status.phase, VM: status.vmId, ...tail }, `gateway: ${line}`);
    }
    await deps.writeStatus(status).catch((err: unknown) => deps.log.warn({ err }, 'could not write the gateway status file'));
  }

  function poke(): void {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = pass()
      .then(
        (nextMs) => schedule(nextMs),
        async (err: unknown) => {
          await report({ phase: 'failed', serving: false, reason: describeError(err), domain: on?.baseDomain ?? null, switching: null, dns });
          schedule(Math.min(deps.timing.pollMs * 2 ** failures++, deps.timing.backoffMaxMs));
        },
      )
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          poke();
        }
      });
  }

  return {
    async prime() {
      on = await deps.recall();
      active = on !== undefined;
      if (!active) return;
      perApp = mirror(await deps.listVms());
      newcomers = false;
    },
    forApp: (app) => (active && on ? { ...on, serving: perApp.get(app) ?? newcomers } : undefined),
    viewOf: (vm) => (active && hostsView ? describeGatewayView(hostsView, vm) : undefined),
    poke,
    async idle() {
      while (running) await running;
    },
    async stop() {
      stopped = true;
      timer?.cancel();
      while (running) await running;
    },
  };
}
