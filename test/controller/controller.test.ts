// The reconcile loop's own timing: what a pass prepares, and when a pass is asked for again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createController, type ControllerDeps } from '../../src/controller/controller.ts';
import type { AppVerdict, ListedApp, ManagedApp } from '../../src/controller/desired.ts';
import { defaultBackoff } from '../../src/controller/backoff.ts';
import { createManualClock } from '../helpers/manual-clock.ts';
import { settledSoon, waitUntil } from '../helpers/harness.ts';

type Spec = { composeHash: string };

// The loop over `names` settled files, with what it asks of its collaborators recorded; every
// file's spec is its content hash, and every reconcile is done at once.
function loop(names: string[]) {
  const clock = createManualClock();
  const files = new Map(names.map((n) => [n, `hash-${n}`]));
  const prepared: string[][] = [];
  const reconciled: string[] = [];
  const listed = (): ListedApp[] =>
    [...files].map(([name, hash]) => ({ name, file: `/apps.d/${name}.yml`, kind: 'settled', fileHash: hash, bytes: Buffer.from(hash) }));
  const deps: ControllerDeps<Spec> = {
    list: async () => ({ ok: true, apps: listed(), dev: 1 }),
    build: (app) => ({ ok: true, spec: { composeHash: app.fileHash }, ports: [] }),
    managed: async () => new Map(),
    reconcile: async (name) => {
      reconciled.push(name);
      return { kind: 'done' };
    },
    prepare: async (batch) => void prepared.push([...batch].sort()),
    observed: async () => undefined,
    dirFault: () => undefined,
    failed: () => undefined,
    clock,
    settings: { resyncMs: 60_000, deleteConfirmMs: 5_000, concurrency: 4, backoff: defaultBackoff },
  };
  return { controller: createController(deps), files, prepared, reconciled, deps };
}

// Issue 18: a resync queued every app for a no-op reconcile through `prepare`, a record stat
// each, and a drop arriving meanwhile waited for that batch: beside 5 000 apps, seconds.
test('a resync reconciles every app but prepares only those whose verdict changed', async (t) => {
  const { controller, files, prepared, reconciled } = loop(['alpha', 'bravo', 'charlie']);
  t.after(() => controller.stop());
  await controller.start();
  await controller.idle();
  assert.deepEqual(prepared, [['alpha', 'bravo', 'charlie']], 'the first pass prepares every app');
  files.set('bravo', 'hash-bravo-2');
  reconciled.length = 0;
  controller.poke('manual');
  await controller.idle();
  assert.deepEqual([...reconciled].sort(), ['alpha', 'bravo', 'charlie'], 'a resync still reconciles every app');
  assert.deepEqual(prepared, [['alpha', 'bravo', 'charlie'], ['bravo']]);
});

const listed = (name: string, port: number): ListedApp => ({
  name,
  file: `apps.d/${name}.yaml`,
  kind: 'settled',
  fileHash: `h-${name}`,
  bytes: Buffer.from(String(port)),
});

function gate(): { promise: Promise<void>; open: () => void } {
  let open = () => {};
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

test('an app waiting for a port is planned again when the app it waits for ends its reconcile, even during the pass that made it wait', async (t) => {
  // alpha's VM holds 8080 and its file asks for 9090: foxtrot, asking for 8080, waits for alpha.
  let alphaMoved = false;
  let apps = [listed('alpha', 9090)];
  const alphaMay = gate();
  const alphaEnded = gate();
  let passes = 0;
  const verdictsOfFoxtrot: string[] = [];
  const controller = createController<Spec>({
    list: async () => ({ ok: true, apps, dev: 1 }),
    build: (app) => {
      const port = Number(app.bytes.toString());
      return { ok: true, spec: { composeHash: app.fileHash }, ports: [{ protocol: 'tcp', host_port: port, vm_port: port, host_address: '127.0.0.1' }] };
    },
    async managed(): Promise<Map<string, ManagedApp>> {
      passes += 1;
      // The second pass reads alpha's VM as it was, and alpha's reconcile ends before the pass does.
      const ports = alphaMoved ? [9090] : [8080];
      if (passes === 2) {
        alphaMay.open();
        await alphaEnded.promise;
      }
      return new Map([['alpha', { file: 'apps.d/alpha.yaml', running: true, ports: ports.map((host_port) => ({ protocol: 'tcp', host_port })) }]]);
    },
    async reconcile(name) {
      if (name === 'alpha' && !alphaMoved) {
        await alphaMay.promise;
        alphaMoved = true;
      }
      return { kind: 'done' };
    },
    async observed(name: string, verdict: AppVerdict<Spec>) {
      if (name === 'foxtrot') verdictsOfFoxtrot.push(verdict.kind === 'hold' ? verdict.why : verdict.kind);
    },
    onResult: (name) => {
      if (name === 'alpha') alphaEnded.open();
    },
    dirFault: () => {},
    failed: () => {},
    clock: createManualClock(),
    settings: { resyncMs: 3_600_000, deleteConfirmMs: 1000, concurrency: 2, backoff: { initialMs: 1000, maxMs: 2000, factor: 2, jitter: 0 } },
  });
  t.after(() => controller.stop());
  await controller.start();
  apps = [listed('alpha', 9090), listed('foxtrot', 8080)];
  controller.poke('fs-event');
  await waitUntil(() => controller.desired('foxtrot')?.kind === 'app', 'foxtrot planned to go after alpha let go of 8080', 2000);
  assert.deepEqual(verdictsOfFoxtrot, ['port-wait', 'app']);
});

// Issue 18: beside 5 000 apps a resync's reading (the directory, every NAME.env and record, the
// VMM's Status) took seconds, and a drop waited behind the pass that did it.
test("a resync reads everything outside the pass: a file event meanwhile is acted on at once, and the resync's pass follows", async (t) => {
  const { controller, files, reconciled, deps } = loop(['alpha', 'bravo']);
  const reading = gate();
  let refreshes = 0;
  let fullLists = 0;
  deps.refresh = async () => {
    refreshes += 1;
    // The first (start-up) refresh reads at once; the resync's waits until the test lets it go.
    if (refreshes > 1) await reading.promise;
  };
  // Were the reading done in the pass, its listing would be the slow part.
  const list = deps.list;
  deps.list = async (full) => {
    if (full) {
      fullLists += 1;
      if (fullLists > 1) await reading.promise;
    }
    return list(full);
  };
  // Let a reading still held go first, or stop() would wait for it.
  t.after(() => {
    reading.open();
    return controller.stop();
  });
  await controller.start();
  await controller.idle();
  reconciled.length = 0;
  controller.poke('resync');
  files.set('charlie', 'hash-charlie');
  controller.poke('fs-event');
  await waitUntil(() => reconciled.includes('charlie'), 'charlie reconciled while the resync still reads', 2000);
  assert.deepEqual(reconciled, ['charlie'], 'only the new app, by the event pass');
  reading.open();
  await controller.idle();
  assert.deepEqual([...reconciled].sort(), ['alpha', 'bravo', 'charlie', 'charlie'], "then the resync's pass reconciles every app");
});

// A resync whose reading steps each wait for `pace`, and the test's hold on them: `step()` asks
// for one step and resolves when it may go.
function pacedReading(deps: ControllerDeps<Spec>) {
  let paceOf: (() => Promise<void>) | undefined;
  const begun = gate();
  const finish = gate();
  deps.refresh = async (pace) => {
    paceOf = pace;
    begun.open();
    await finish.promise;
  };
  return {
    begun: begun.promise,
    step: () => (paceOf as () => Promise<void>)(),
    finish: finish.open,
  };
}

// Hold app `name`'s reconciles until `open()`; `runs()` counts those begun.
function holdReconciles(deps: ControllerDeps<Spec>, name: string): { open: () => void; runs: () => number } {
  const may = gate();
  let runs = 0;
  const reconcile = deps.reconcile;
  deps.reconcile = async (app) => {
    if (app === name) {
      runs += 1;
      await may.promise;
    }
    return reconcile(app);
  };
  return { open: may.open, runs: () => runs };
}

// Issue 18: a drop whose settle window ended during a resync's reading shared the thread with it
// step by step (+255 ms beside 1 000 apps, bench/resync-drop.ts).
test("a resync's reading waits at each step while a changed app's reconcile is under way, and goes on when it ends", async (t) => {
  const { controller, files, deps } = loop(['alpha']);
  await controller.start();
  await controller.idle();
  const reading = pacedReading(deps);
  const charlieMay = holdReconciles(deps, 'charlie');
  t.after(() => {
    charlieMay.open();
    reading.finish();
    return controller.stop();
  });
  files.set('charlie', 'hash-charlie');
  controller.poke('fs-event');
  controller.poke('resync');
  await reading.begun;
  assert.equal(await settledSoon(reading.step()), false, "charlie's reconcile (a new file) holds the reading");
  charlieMay.open();
  assert.equal(await settledSoon(reading.step()), true, 'charlie is through');
});

test("a resync's reading waits while an event pass is under way, not for a resync's own reconciles, and at most for the first second of event work", async (t) => {
  const { controller, files, deps } = loop(['alpha', 'bravo']);
  const clock = deps.clock as ReturnType<typeof createManualClock>;
  await controller.start();
  await controller.idle();
  const listing = gate();
  const list = deps.list;
  let holdList = false;
  deps.list = async (full) => {
    if (holdList) await listing.promise;
    return list(full);
  };
  const bravoMay = holdReconciles(deps, 'bravo');
  t.after(() => {
    listing.open();
    bravoMay.open();
    again.finish();
    return controller.stop();
  });
  // A resync's pass queues bravo's no-op reconcile (routine), which hangs; the next resync's
  // reading is not held by it.
  deps.refresh = async () => undefined;
  controller.poke('resync');
  await waitUntil(() => bravoMay.runs() === 1, "the resync's reconcile of bravo under way", 2000);
  const again = pacedReading(deps);
  controller.poke('resync');
  await again.begun;
  assert.equal(await settledSoon(again.step()), true, "a resync's routine reconcile holds nothing");
  // An event pass, held in its listing, holds the reading.
  holdList = true;
  files.set('charlie', 'hash-charlie');
  controller.poke('fs-event');
  const held = again.step();
  assert.equal(await settledSoon(held), false, 'the event pass holds the reading');
  await clock.advance(999);
  assert.equal(await settledSoon(held), false);
  await clock.advance(1);
  assert.equal(await settledSoon(held), true, 'for a second at most');
});

test("a resync's pass waits for a changed app's reconcile under way, and its no-op reconciles run after it", async (t) => {
  const { controller, files, reconciled, deps } = loop(['alpha', 'bravo']);
  await controller.start();
  await controller.idle();
  let fullLists = 0;
  const list = deps.list;
  deps.list = async (full) => {
    if (full) fullLists += 1;
    return list(full);
  };
  deps.refresh = async () => undefined;
  const charlieMay = holdReconciles(deps, 'charlie');
  t.after(() => {
    charlieMay.open();
    return controller.stop();
  });
  reconciled.length = 0;
  files.set('charlie', 'hash-charlie');
  controller.poke('fs-event');
  await waitUntil(() => reconciled.length === 0 && controller.desired('charlie') !== undefined, 'charlie planned', 2000);
  controller.poke('resync');
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
  assert.equal(fullLists, 0, "the resync's pass waits while charlie's reconcile is under way");
  charlieMay.open();
  await controller.idle();
  assert.equal(fullLists, 1);
  assert.deepEqual(reconciled, ['charlie', 'alpha', 'bravo', 'charlie']);
});
