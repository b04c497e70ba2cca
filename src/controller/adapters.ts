// The seams between the apps.d scanner, the app spec builder and the controller: each turns one
// module's output into the next one's input, with the operator-facing wording on the way.
import { join } from 'node:path';
import type { Config } from '../config.ts';
import type { Logger } from '../log/logger.ts';
import type { Recheck, ScanEntry, Scanner } from '../appsdir/scan.ts';
import type { AppStatus } from '../status/schema.ts';
import type { DirListing } from './controller.ts';
import type { AppVerdict, BuiltSpec, ListedApp, ListedEnv } from './desired.ts';
import type { EnvFileReader } from '../secrets/env-file.ts';
import type { Pace } from '../fsx/in-chunks.ts';
import type { StatusUpdate } from './reporter.ts';
import type { DesiredSpec } from './spec.ts';
import { buildAppSpec, appDefaultsOf, hostPortPolicyOf, type Tier2 } from '../app/spec.ts';
import type { ReservedPort } from '../app/host-ports.ts';
import { decodeComposeText } from '../app/parse.ts';
import { describeError, SupervisorError } from '../errors.ts';
import { formatWarning } from '../app/warning.ts';

// Read NAME.env beside a settled app file; its problems make the app invalid, like a bad file.
async function readListedEnv(envs: EnvFileReader, composePath: string, recheck: boolean): Promise<ListedEnv | undefined> {
  try {
    const env = await envs.read(composePath, recheck);
    return env ? { ok: true, entries: env.values, hash: env.valuesHash } : undefined;
  } catch (err) {
    return { ok: false, code: err instanceof SupervisorError ? err.code : 'ENV_READ', reason: describeError(err) };
  }
}

// What an app lister reads apps.d with. `forget`: told each app name that left the listing, so
// what is kept for it elsewhere (its built spec) goes with it.
export type AppsDirReaders = { scanner: Scanner; envs: EnvFileReader; dir: string; log: Logger; forget?: (name: string) => void };

// Lists apps.d, a pass at a time, remembering the last pass (issue 18). `differences` is a
// resync's look outside the pass: the entry names (app files, misnamed entries, NAME.env) a pass
// hinted with them must look at again to list what a full pass would; undefined when it cannot
// tell (no pass yet, apps.d cannot be listed), so the pass must be a full one. It only reads, so
// it may run while a pass does.
export type AppLister = { listApps(recheck: Recheck): Promise<DirListing>; differences(pace?: Pace): Promise<ReadonlySet<string> | undefined> };

// The app a scan entry with no settled content makes.
function unreadApp(e: Exclude<ScanEntry, { state: 'settled' }>, dir: string, base: string): ListedApp {
  switch (e.state) {
    case 'unsettled':
      return { name: e.name, file: base + e.file, kind: 'unsettled' };
    case 'refused':
      return { name: e.name, file: base + e.file, kind: 'refused', code: e.code, reason: e.message };
    case 'conflict':
      return { name: e.name, file: e.files.map((f) => join(dir, f)).join(', '), kind: 'refused', code: e.code, reason: e.message, conflict: true };
  }
}

// listApps scans apps.d once and describes every app identity in it; misnamed files are warned
// about once. `recheck` says which files may have changed (src/appsdir/scan.ts); NAME.env is
// looked at again when it, or its app's file, is among them. An app whose scan entry is the
// last pass's object and whose NAME.env was not looked at again is the last pass's ListedApp
// object (a contract: planning may memoise on it), so an event pass reads and builds only what
// changed; `apps` is a new array each pass.
export function createAppLister(readers: AppsDirReaders): AppLister {
  const { scanner, envs, dir, log } = readers;
  // An app's file name is a plain name (rule 1), so its path is the directory's and the name:
  // path.join normalising thousands of paths was most of a pass's time beside 1 000 apps.
  const base = join(dir, '_').slice(0, -1);
  // Each app of the last pass, with the scan entry it was made of.
  const last = new Map<string, { entry: ScanEntry; app: ListedApp }>();

  // An app that was settled is not now, or not from that file: its NAME.env outcome goes, so it
  // is read afresh once the app settles again.
  function dropEnv(app: ListedApp | undefined): void {
    if (app?.kind === 'settled') envs.forget(app.file);
  }

  async function listApps(recheck: Recheck): Promise<DirListing> {
    const result = await scanner.scan(recheck);
    if (result.kind === 'dir-error') return { ok: false, reason: result.message };
    for (const m of result.misnamed) if (m.firstSeen) log.warn({ FILE: join(dir, m.file), ACTION: 'refused' }, m.message);
    const all = recheck.all || result.replaced;
    const hints: ReadonlySet<string> = recheck.all ? new Set() : recheck.names;
    // The apps whose NAME.env an event named.
    const envHinted = new Set<string>();
    for (const hint of hints) if (hint.endsWith('.env')) envHinted.add(hint.slice(0, -'.env'.length));
    const known = last.size;
    let came = false;
    const reads: Array<Promise<void>> = [];
    const apps = result.entries.map((e): ListedApp => {
      const kept = last.get(e.name);
      came ||= kept === undefined;
      const same = kept?.entry === e;
      if (e.state !== 'settled') {
        if (same) return kept.app;
        dropEnv(kept?.app);
        const app = unreadApp(e, dir, base);
        last.set(e.name, { entry: e, app });
        return app;
      }
      const looked = all || hints.has(e.file) || envHinted.has(e.name);
      if (same && !looked && envs.holds(kept.app.file)) return kept.app;
      const file = same ? kept.app.file : base + e.file;
      if (kept?.app.file !== file) dropEnv(kept?.app);
      const app: Extract<ListedApp, { kind: 'settled' }> = { name: e.name, file, kind: 'settled', fileHash: e.sha256, bytes: e.bytes, env: undefined };
      reads.push(readListedEnv(envs, file, looked).then((env) => void (app.env = env)));
      last.set(e.name, { entry: e, app });
      return app;
    });
    await Promise.all(reads);
    // Apps came or went: those no longer listed are forgotten (only then: it costs O(apps)).
    if (came || result.entries.length !== known) {
      const names = new Set(result.entries.map((e) => e.name));
      for (const [name, { app }] of last) {
        if (names.has(name)) continue;
        dropEnv(app);
        last.delete(name);
        readers.forget?.(name);
      }
    }
    return { ok: true, apps, settleAt: result.nextSettleAt ?? undefined, dev: result.dir.dev };
  }

  async function differences(pace?: Pace): Promise<ReadonlySet<string> | undefined> {
    // The NAME.env read are those of the apps settled now; one of an app not settled is read
    // afresh once it settles, so it needs no name. Taken before any await: a pass under way has
    // set its apps here before it reads their NAME.env.
    const composePaths: string[] = [];
    for (const { app } of last.values()) if (app.kind === 'settled') composePaths.push(app.file);
    const [files, secrets] = await Promise.all([scanner.differences(pace), envs.differences(composePaths, pace)]);
    return files === undefined ? undefined : new Set([...files, ...secrets]);
  }

  return { listApps, differences };
}

// What every spec is built with: supervisor.toml, the guest image, and the host ports the host's
// own services hold (src/init/reserved-ports.ts; none when absent).
// `tier2`: Tier 2 as it applies to one app now (absent: no gateway.toml), with the gateway_urls a
// VM that uses the gateway is given.
export type SpecContext = { config: Config; image: string; reservedPorts?: readonly ReservedPort[]; tier2?: (app: string) => AppTier2 | undefined };
export type AppTier2 = Tier2 & { urls: string[]; baseDomain: string; proxyPort: number };

// Build the spec of one settled file with the defaults of supervisor.toml; errors become an
// invalid verdict (rule 8), never an exception out of the scan.
export function buildDesired(app: Extract<ListedApp, { kind: 'settled' }>, ctx: SpecContext): BuiltSpec<DesiredSpec> {
  if (app.env && !app.env.ok) return { ok: false, code: app.env.code, reason: app.env.reason };
  try {
    const text = decodeComposeText(app.file, app.bytes);
    const envKeys = app.env?.entries.map((e) => e.key);
    const tier2 = ctx.tier2?.(app.name);
    const spec = buildAppSpec({
      name: app.name,
      file: app.file,
      text,
      envKeys,
      defaults: { ...appDefaultsOf(ctx.config.apps), image: ctx.image },
      hostPorts: hostPortPolicyOf(ctx.config.apps, ctx.reservedPorts ?? []),
      tier2,
    });
    const env = app.env ? { entries: app.env.entries, hash: app.env.hash } : undefined;
    const gatewayUrls = spec.gateway ? (tier2?.urls ?? []) : [];
    const https = spec.gateway && tier2 ? { baseDomain: tier2.baseDomain, proxyPort: tier2.proxyPort } : undefined;
    const desired: DesiredSpec = { ...spec, kmsUrls: ctx.config.apps.kms_urls, gatewayUrls, ...(https ? { https } : {}), env };
    return { ok: true, spec: desired, ports: spec.ports };
  } catch (err) {
    const code = err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : 'APP_INVALID';
    return { ok: false, code, reason: describeError(err) };
  }
}

// buildDesired with a memory: a file whose bytes and NAME.env are as at the last pass keeps the
// spec built then, so a pass over a thousand unchanged files parses none of them. `forget` drops
// an app no longer listed.
export function createSpecBuilder(ctx: SpecContext): {
  build: (app: Extract<ListedApp, { kind: 'settled' }>) => BuiltSpec<DesiredSpec>;
  forget: (name: string) => void;
} {
  const built = new Map<string, { key: string; result: BuiltSpec<DesiredSpec> }>();
  const envKey = (env: ListedEnv | undefined) => (env === undefined ? '' : env.ok ? `ok:${env.hash}` : `error:${env.code}:${env.reason}`);
  return {
    build(app) {
      const key = `${app.file}\0${app.fileHash}\0${envKey(app.env)}\0${JSON.stringify(ctx.tier2?.(app.name) ?? null)}`;
      const last = built.get(app.name);
      if (last?.key === key) return last.result;
      const result = buildDesired(app, ctx);
      built.set(app.name, { key, result });
      return result;
    },
    forget(name) {
      built.delete(name);
    },
  };
}

// The status change a pass's verdict implies: warnings of a file that will run, or why a file is
// held back; an edit still settling keeps the phase. Undefined when nothing changes. `current`:
// the app's status now.
export function observedUpdate(name: string, verdict: AppVerdict<DesiredSpec>, file: string, current: AppStatus | undefined): StatusUpdate | undefined {
  if (verdict.kind === 'gone') return undefined;
  if (verdict.kind === 'app') {
    const warnings = verdict.spec.warnings.map(formatWarning);
    // A file back while its delete was being confirmed: `pending` until its reconcile says what it is.
    const phase = current === undefined || current.phase === 'deleting' ? 'pending' : current.phase;
    return { app: name, file, phase, warnings, warned: { fileHash: verdict.fileHash } };
  }
  switch (verdict.why) {
    case 'unsettled':
      return { app: name, file, phase: current?.phase ?? 'pending' };
    case 'delete-pending':
      return { app: name, file, phase: 'deleting', deleteAt: verdict.dueAt };
    case 'record':
      // Not the file's fault: the app is held until the operator moves the record aside.
      return { app: name, file, phase: 'failed', error: verdict.reason, code: verdict.code, held: { action: 'refused', reason: verdict.reason } };
    case 'gpu':
    case 'port-wait':
      // Not a bad file: it deploys as soon as its GPUs or ports are free; the journal says why once.
      return { app: name, file, phase: 'pending', error: verdict.reason, code: verdict.code, held: { action: 'conflict', reason: verdict.reason, fileHash: verdict.fileHash } };
    case 'invalid':
    case 'refused':
    case 'conflict':
      return {
        app: name,
        file,
        phase: 'invalid',
        error: verdict.reason,
        code: verdict.code,
        held: { action: verdict.why, reason: verdict.reason, fileHash: verdict.fileHash },
      };
  }
}
