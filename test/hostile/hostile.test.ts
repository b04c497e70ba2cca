// Hostile inputs (test/fixtures/hostile/): invalid YAML, alias bombs, deep nesting, binary and
// wrongly encoded files, empty and non-compose YAML, bad x-dstack keys and values, bad and
// clashing ports, a clashing name, files too large, of the wrong owner or mode, symlinks out of
// apps.d, directories, a FIFO and weird names. Each yields its expected error (code + the words
// the operator reads), and all of them dropped beside running apps never disturb those apps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigSchema } from '../../src/config.ts';
import { createLogger } from '../../src/log/logger.ts';
import { createScanner, RECHECK_ALL } from '../../src/appsdir/scan.ts';
import { createEnvFileReader } from '../../src/secrets/env-file.ts';
import { buildDesired, createAppLister } from '../../src/controller/adapters.ts';
import { planDirectory, type ListedApp } from '../../src/controller/desired.ts';
import { DEFAULT_SIM_IMAGE } from '../../src/sim/vmm-config.ts';
import { collectLines, type LogLine } from '../log/collect.ts';
import { composeOf, composeText, freePort, startHarness, waitUntil } from '../helpers/harness.ts';
import { dropName, identityOf, loadCases, materialize, type HostileCase } from './cases.ts';
import { defer } from '../helpers/cleanup.ts';

const UID = process.getuid?.() ?? 0;

// What the supervisor made of one case: the code, the journal ACTION and the operator's text.
type Outcome = { code: string; action: string; message: string };

// The misnamed-file warning about `path` among `lines`, if any.
const warningAbout = (lines: readonly LogLine[], path: string) => lines.find((l) => l.priority === 4 && l.fields.FILE === path);

// The running apps every case is dropped beside: "keep" (its port is what the port-clash cases
// publish) and "twin" (the name-clash case adds twin.yaml).
async function runningApps(appsDir: string): Promise<{ keep: string; twin: string; keepPort: number }> {
  const keepPort = await freePort();
  const keep = composeText(keepPort, 'keep');
  const twin = composeText(await freePort(), 'twin');
  await writeFile(join(appsDir, 'keep.yml'), keep, { mode: 0o644 });
  await writeFile(join(appsDir, 'twin.yml'), twin, { mode: 0o644 });
  return { keep, twin, keepPort };
}

async function dropAll(cases: readonly HostileCase[], appsDir: string, keepPort: number): Promise<void> {
  // `../outside.yml` is the target of a symlink case: a valid app just outside apps.d.
  await writeFile(join(appsDir, '..', 'outside.yml'), composeText(1, 'outside'), { mode: 0o644 });
  for (const c of cases) await materialize(c, appsDir, keepPort);
}

// Run the supervisor's own pipeline (scan, read, build, plan) over `appsDir` once.
async function outcomes(cases: readonly HostileCase[], appsDir: string): Promise<Map<string, Outcome | undefined>> {
  const collected = collectLines();
  const log = createLogger({ level: 'debug', stream: collected.stream });
  const config = ConfigSchema.parse({ apps_dir: appsDir, apps: { owner: UID } });
  const scanner = createScanner({ dir: appsDir, owner: UID, maxFileBytes: config.apps.max_file_bytes, settleMs: 0, now: Date.now });
  const listing = await createAppLister({ scanner, envs: createEnvFileReader({ owner: UID }), dir: appsDir, log }).listApps(RECHECK_ALL);
  assert.ok(listing.ok, 'apps.d can be listed');
  const build = (app: Extract<ListedApp, { kind: 'settled' }>) => buildDesired(app, { config, image: DEFAULT_SIM_IMAGE.name });
  const running = (name: string) => ({ file: join(appsDir, `${name}.yml`), running: true, ports: [] });
  const plan = planDirectory(
    { listed: listing.apps, managed: new Map([['keep', running('keep')], ['twin', running('twin')]]), lastFileHash: new Map(), build, now: Date.now(), deleteConfirmMs: 0, massConfirmMs: 0 },
    { absentSince: new Map() },
  );
  const out = new Map<string, Outcome | undefined>();
  for (const c of cases) {
    const identity = identityOf(c);
    if (identity === undefined) {
      const line = warningAbout(collected.lines, join(appsDir, dropName(c)));
      out.set(c.id, line && { code: 'misnamed', action: String(line.fields.ACTION), message: String(line.fields.msg) });
      continue;
    }
    const listed = listing.apps.find((a) => a.name === identity);
    if (listed?.kind === 'refused') {
      out.set(c.id, { code: listed.code, action: listed.conflict ? 'conflict' : 'refused', message: listed.reason });
    } else if (listed?.kind === 'settled') {
      const built = build(listed);
      const verdict = plan.verdicts.get(identity);
      if (!built.ok) out.set(c.id, { code: built.code, action: 'invalid', message: built.reason });
      else if (verdict?.kind === 'hold' && verdict.why === 'conflict') out.set(c.id, { code: 'port-conflict', action: 'conflict', message: verdict.reason });
      else out.set(c.id, undefined);
    } else {
      out.set(c.id, undefined);
    }
  }
  return out;
}

test('hostile inputs: the corpus holds at least 60 cases of every kind the contract names', async () => {
  const cases = await loadCases();
  assert.ok(cases.length >= 60, `${cases.length} cases`);
  assert.equal(new Set(cases.map((c) => c.id)).size, cases.length, 'ids are unique');
  const codes = new Set(cases.map((c) => c.expect.code));
  for (const code of ['APP_YAML', 'APP_ENCODING', 'APP_EMPTY', 'APP_SCHEMA', 'APP_XDSTACK_KEY', 'APP_XDSTACK_VALUE', 'APP_PORTS', 'APP_REFUSED', 'port-conflict', 'APP_CONFLICT', 'APP_TOO_LARGE', 'APP_OWNER', 'APP_WRITABLE', 'APP_SYMLINK_OUTSIDE', 'APP_NOT_REGULAR', 'misnamed']) {
    assert.ok(codes.has(code), `a case for ${code}`);
  }
});

test('hostile inputs: each yields its expected error code and operator-facing words', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dstack-hostile-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  const appsDir = join(dir, 'apps.d');
  await mkdir(appsDir, { mode: 0o755 });
  const cases = await loadCases();
  const { keepPort } = await runningApps(appsDir);
  await dropAll(cases, appsDir, keepPort);
  const got = await outcomes(cases, appsDir);
  const wrong = cases.flatMap((c) => {
    const o = got.get(c.id);
    const ok = o !== undefined && o.code === c.expect.code && o.action === c.expect.action && o.message.includes(c.expect.phrase);
    return ok ? [] : [`${c.id}: expected ${JSON.stringify(c.expect)}, got ${JSON.stringify(o)}`];
  });
  assert.deepEqual(wrong, []);
});

test('hostile inputs: all dropped beside running apps, those apps are never restarted or touched', async (t) => {
  const h = await startHarness(t);
  await h.start();
  const cases = await loadCases();
  const { keep, twin, keepPort } = await runningApps(h.appsDir);
  const before = { keep: await h.deployed('keep', keep), twin: await h.deployed('twin', twin) };
  const mark = h.mutations().length;
  await dropAll(cases, h.appsDir, keepPort);

  // Every case has said what is wrong with it, in the journal line the operator reads.
  const said = (c: HostileCase): boolean => {
    const identity = identityOf(c);
    if (identity === undefined) return String(warningAbout(h.logs, h.path(dropName(c)))?.fields.msg ?? '').includes(c.expect.phrase);
    return h.decisions(identity, c.expect.action).some((l) => String(l.fields.REASON).includes(c.expect.phrase));
  };
  await waitUntil(() => cases.every(said), 'a journal line for every hostile input', 30_000).catch((err: Error) => {
    throw new Error(`${err.message}; silent: ${cases.filter((c) => !said(c)).map((c) => c.id).join(', ')}`);
  });
  await h.checkpoint();

  assert.deepEqual(h.mutations().slice(mark), ['CreateVm'], 'no Stop/Start/Update/Remove, only the checkpoint deploy');
  for (const [name, text] of [['keep', keep], ['twin', twin]] as const) {
    const vm = h.sim.state.list().find((v) => v.name === name);
    assert.equal(vm?.id, before[name].id, `${name} keeps its VM`);
    assert.equal(vm?.status, 'running', `${name} still runs`);
    assert.equal(composeOf(vm), text, `${name} still runs the content it ran`);
  }
  const hostile = new Set(cases.map(identityOf).filter((n) => n !== undefined && n !== 'twin'));
  assert.deepEqual(h.sim.state.list().filter((v) => hostile.has(v.name)).map((v) => v.name), [], 'no hostile input deployed');
  const statuses = await h.statuses();
  for (const c of cases) {
    const identity = identityOf(c);
    if (identity === undefined || identity === 'twin') continue;
    const status = statuses.find((s) => s.app === identity);
    assert.equal(status?.phase, 'invalid', `${c.id}: status phase`);
    assert.ok(status?.last_error?.includes(c.expect.phrase), `${c.id}: status last_error ${status?.last_error}`);
  }
});
