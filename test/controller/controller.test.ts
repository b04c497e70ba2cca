import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createController, type ControllerDeps } from '../../src/controller/controller.ts';
import type { ListedApp } from '../../src/controller/desired.ts';
import { defaultBackoff } from '../../src/controller/backoff.ts';
import { createManualClock } from '../helpers/manual-clock.ts';

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
  return { controller: createController(deps), files, prepared, reconciled };
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
