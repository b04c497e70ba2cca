// Issue 18: an event pass plans only the apps whose listing or managed entry changed, and those
// tied to others (ports, GPUs) or waiting on time; every verdict must still be what planning every
// app gives. The oracle is a second loop fed the same directory and records as fresh objects on
// every pass, so each of its passes plans every app.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createController, type ControllerDeps } from '../../src/controller/controller.ts';
import type { AppVerdict, ListedApp, ManagedApp } from '../../src/controller/desired.ts';
import { defaultBackoff } from '../../src/controller/backoff.ts';
import { createManualClock } from '../helpers/manual-clock.ts';

type Spec = { composeHash: string; gpus?: true };

// A file's content: the host port it publishes (0: none), whether it asks for a GPU, a version.
type Content = { port: number; gpu: boolean; version: number };
type World = {
  files: Map<string, ListedApp>;
  records: Map<string, ManagedApp>;
};

const NAMES = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot'];

function loopOver(world: World, clock: ReturnType<typeof createManualClock>, fresh: boolean) {
  // The oracle copies every object on every pass: to the scope, every app changed.
  const copy = <T extends object>(o: T): T => (fresh ? { ...o } : o);
  const deps: ControllerDeps<Spec> = {
    list: async () => ({ ok: true, apps: [...world.files.values()].map(copy), dev: 1 }),
    build: (app) => {
      const c = JSON.parse(app.bytes.toString()) as Content;
      if (c.version % 7 === 6) return { ok: false, code: 'APP_INVALID', reason: `${app.file}: invalid` };
      const ports = c.port === 0 ? [] : [{ protocol: 'tcp', host_port: c.port, vm_port: 80, host_address: '0.0.0.0' }];
      return { ok: true, spec: { composeHash: `${app.fileHash}`, ...(c.gpu ? { gpus: true as const } : {}) }, ports };
    },
    managed: async () => new Map([...world.records].map(([name, m]) => [name, copy(m)])),
    shares: (spec) => spec.gpus === true,
    // One GPU on the host: the first asking app by name gets it, the others wait.
    claim: async (verdicts) => {
      const asking = [...verdicts].filter(([, v]) => v.kind === 'app' && v.spec.gpus).map(([name]) => name).sort();
      for (const name of asking.slice(1)) verdicts.set(name, { kind: 'hold', why: 'gpu', reason: `${name} waits for ${asking[0]}'s GPU`, code: 'APP_GPU_UNAVAILABLE' });
    },
    reconcile: async () => ({ kind: 'done' }),
    observed: async () => undefined,
    dirFault: () => undefined,
    failed: () => undefined,
    clock,
    settings: { resyncMs: 3_600_000, deleteConfirmMs: 5_000, concurrency: 4, backoff: defaultBackoff },
  };
  return createController(deps);
}

const sorted = (list: Array<[string, AppVerdict<Spec>]>) => [...list].sort(([a], [b]) => (a < b ? -1 : 1));

test('over a random run of edits, deletes, renames, records and ports, event passes give the verdicts of planning every app', { timeout: 60_000 }, async (t) => {
  let seed = 1818;
  // An LCG's high bits (its low ones repeat with short periods).
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return Math.floor((seed / 2 ** 31) * n);
  };
  const world: World = { files: new Map(), records: new Map() };
  let version = 0;
  const put = (name: string) => {
    const content: Content = { port: [0, 0, 8080, 8081][random(4)] as number, gpu: random(5) === 0, version: version++ };
    const bytes = Buffer.from(JSON.stringify(content));
    const kind = random(10);
    world.files.set(
      name,
      kind === 0
        ? { name, file: `/apps.d/${name}.yml`, kind: 'unsettled' }
        : kind === 1
          ? { name, file: `/apps.d/${name}.yml`, kind: 'refused', code: 'APP_PERMS', reason: `${name}.yml: mode` }
          : { name, file: `/apps.d/${name}.yml`, kind: 'settled', fileHash: `h${content.version}`, bytes },
    );
  };
  const clock = createManualClock();
  const scoped = loopOver(world, clock, false);
  const oracle = loopOver(world, clock, true);
  t.after(() => Promise.all([scoped.stop(), oracle.stop()]));
  const kinds = new Set<string>();
  for (const name of NAMES.slice(0, 4)) put(name);
  await Promise.all([scoped.start(), oracle.start()]);
  for (let step = 0; step < 3000; step++) {
    const name = NAMES[random(NAMES.length)] as string;
    switch (random(8)) {
      case 0:
      case 1:
        put(name);
        break;
      case 2:
        world.files.delete(name);
        break;
      case 3: {
        // mv name other: the same bytes under another name.
        const other = NAMES[random(NAMES.length)] as string;
        const entry = world.files.get(name);
        if (entry === undefined || other === name) break;
        world.files.delete(name);
        world.files.set(other, { ...entry, name: other, file: `/apps.d/${other}.yml` });
        break;
      }
      case 4:
        world.records.set(name, { file: `/apps.d/${name}.yml`, running: random(2) === 0, ports: random(2) === 0 ? [] : [{ protocol: 'tcp', host_port: 8080 + random(2) }], operating: random(4) === 0 });
        break;
      case 5:
        if (random(3) === 0) world.records.set(name, { file: `/apps.d/${name}.yml`, running: false, ports: [], unreadable: { code: 'STATE_CORRUPT', message: `${name}.json: corrupt` } });
        else world.records.delete(name);
        break;
      case 6:
        await clock.advance(random(2) === 0 ? 2_000 : 6_000);
        break;
      default:
        break;
    }
    scoped.poke('fs-event');
    oracle.poke('fs-event');
    await Promise.all([scoped.idle(), oracle.idle()]);
    for (const [, v] of oracle.verdicts()) (globalThis as any).seen = ((globalThis as any).seen ?? new Map()).set(v.kind === "hold" ? v.why : v.kind, (((globalThis as any).seen?.get(v.kind === "hold" ? v.why : v.kind)) ?? 0) + 1);
    assert.deepEqual(sorted(scoped.verdicts()), sorted(oracle.verdicts()), `step ${step}`);
    for (const [, v] of oracle.verdicts()) kinds.add(v.kind === 'hold' ? v.why : v.kind);
  }
  console.log((globalThis as any).seen);
  // The run went through every kind of verdict the scope must get right.
  assert.deepEqual([...kinds].sort(), ['app', 'conflict', 'delete-pending', 'gone', 'gpu', 'invalid', 'port-wait', 'record', 'refused', 'unsettled']);
});
