import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planDirectory, type DeleteGuards, type ListedApp, type PlanInput } from '../../src/controller/desired.ts';

type Spec = { composeHash: string };
const settled = (name: string, port?: number): ListedApp => ({
  name,
  file: `apps.d/${name}.yaml`,
  kind: 'settled',
  fileHash: `h-${name}`,
  bytes: Buffer.from(port === undefined ? '' : String(port)),
});

function input(listed: ListedApp[], managed: string[], now: number): PlanInput<Spec> {
  return {
    listed,
    managed: new Map(managed.map((n) => [n, { file: `apps.d/${n}.yaml`, running: true, ports: [] }])),
    build: (app) =>
      app.bytes.toString() === 'bad'
        ? { ok: false, code: 'APP_YAML', reason: 'broken' }
        : {
            ok: true,
            spec: { composeHash: app.fileHash },
            ports: app.bytes.length
              ? [{ protocol: 'tcp', host_port: Number(app.bytes.toString()), vm_port: Number(app.bytes.toString()), host_address: '127.0.0.1' }]
              : [],
          },
    now,
    lastFileHash: new Map(managed.map((n) => [n, `h-${n}`])),
    deleteConfirmMs: 5000,
    massConfirmMs: 60000,
  };
}

test('rule 7: a missing file is held until it is still missing T later', () => {
  const guards: DeleteGuards = { absentSince: new Map() };
  const first = planDirectory(input([settled('b')], ['a', 'b'], 0), guards);
  assert.equal(first.verdicts.get('a')?.kind, 'hold');
  assert.equal(first.recheckAt, 5000);
  const early = planDirectory(input([settled('b')], ['a', 'b'], 4999), guards);
  assert.equal(early.verdicts.get('a')?.kind, 'hold');
  const late = planDirectory(input([settled('b')], ['a', 'b'], 5000), guards);
  assert.equal(late.verdicts.get('a')?.kind, 'gone');
});

test('rule 7: a file that comes back within T is never torn down', () => {
  const guards: DeleteGuards = { absentSince: new Map() };
  planDirectory(input([], ['a', 'b'], 0), guards);
  planDirectory(input([settled('a'), settled('b')], ['a', 'b'], 3000), guards);
  const later = planDirectory(input([settled('b')], ['a', 'b'], 6000), guards);
  assert.equal(later.verdicts.get('a')?.kind, 'hold', 'absence restarts from the new event');
});

test('rule 13: losing every managed app at once needs a second scan R later', () => {
  const guards: DeleteGuards = { absentSince: new Map() };
  planDirectory(input([], ['a', 'b'], 0), guards);
  const confirmed = planDirectory(input([], ['a', 'b'], 5000), guards);
  assert.equal(confirmed.massGuardActive, true);
  assert.equal(confirmed.verdicts.get('a')?.kind, 'hold');
  assert.equal(confirmed.recheckAt, 65000);
  const second = planDirectory(input([], ['a', 'b'], 65000), guards);
  assert.equal(second.massGuardActive, false);
  assert.equal(second.verdicts.get('a')?.kind, 'gone');
  assert.equal(second.verdicts.get('b')?.kind, 'gone');
});

test('rule 13: a single managed app can be deleted without the mass guard', () => {
  const guards: DeleteGuards = { absentSince: new Map() };
  planDirectory(input([], ['a'], 0), guards);
  assert.equal(planDirectory(input([], ['a'], 5000), guards).verdicts.get('a')?.kind, 'gone');
});

test('rule 8: an invalid file holds its app and never becomes a teardown', () => {
  const guards: DeleteGuards = { absentSince: new Map() };
  const bad: ListedApp = { ...settled('a'), bytes: Buffer.from('bad') } as ListedApp;
  for (const now of [0, 10_000, 100_000]) {
    const v = planDirectory(input([bad], ['a'], now), guards).verdicts.get('a');
    assert.deepEqual(v, { kind: 'hold', why: 'invalid', reason: 'broken', code: 'APP_YAML', fileHash: 'h-a' });
  }
});

test('a port clash holds the newcomer and names the app that runs with it', () => {
  const guards: DeleteGuards = { absentSince: new Map() };
  const out = planDirectory(input([settled('blog', 8080), settled('shop', 8080)], ['blog'], 0), guards);
  assert.equal(out.verdicts.get('blog')?.kind, 'app');
  const shop = out.verdicts.get('shop');
  assert.equal(shop?.kind === 'hold' && shop.why, 'conflict');
  assert.match(shop?.kind === 'hold' ? shop.reason : '', /already published by app "blog"/);
  assert.equal(shop?.kind === 'hold' && shop.code, 'APP_PORT_CONFLICT');
});

test('the ports of a running app whose file is invalid or missing stay its own; a newcomer asking for one is held', () => {
  const bad: ListedApp = { ...settled('blog'), bytes: Buffer.from('bad') } as ListedApp;
  for (const listed of [[bad, settled('shop', 8080)], [settled('shop', 8080)]]) {
    const plan = input(listed, ['blog'], 0);
    const managed = new Map([['blog', { file: 'apps.d/blog.yaml', running: true, ports: [{ protocol: 'tcp', host_port: 8080 }] }]]);
    const shop = planDirectory({ ...plan, managed }, { absentSince: new Map() }).verdicts.get('shop');
    assert.equal(shop?.kind === 'hold' && shop.why, 'conflict');
    assert.match(shop?.kind === 'hold' ? shop.reason : '', /port 8080\/tcp is already published by app "blog"/);
  }
});

test('a port held by the VM of a held app is refused even to a running app that sorts before it', () => {
  const bad: ListedApp = { ...settled('zulu'), bytes: Buffer.from('bad') } as ListedApp;
  const plan = input([bad, settled('alpha', 8080)], ['alpha', 'zulu'], 0);
  const managed = new Map([
    ['alpha', { file: 'apps.d/alpha.yaml', running: true, ports: [{ protocol: 'tcp', host_port: 9090 }] }],
    ['zulu', { file: 'apps.d/zulu.yaml', running: true, ports: [{ protocol: 'tcp', host_port: 8080 }] }],
  ]);
  const alpha = planDirectory({ ...plan, managed }, { absentSince: new Map() }).verdicts.get('alpha');
  assert.equal(alpha?.kind === 'hold' && alpha.why, 'conflict');
  assert.match(alpha?.kind === 'hold' ? alpha.reason : '', /already published by app "zulu"/);
});

// Two managed apps' records as the managed index gives them: `ports` is what each VM holds now.
function vmsHolding(holding: Record<string, number[]>, operating: string[] = []) {
  return new Map(
    Object.entries(holding).map(([name, ports]) => [
      name,
      { file: `apps.d/${name}.yaml`, running: true, ports: ports.map((host_port) => ({ protocol: 'tcp', host_port })), operating: operating.includes(name) },
    ]),
  );
}

test("a port a valid app's VM is moving away from: the app asking for it waits, naming the mover; the mover goes ahead", () => {
  // alpha's file now asks for 9090; its VM still holds 8080 (manifest not updated yet, or the guest not restarted).
  const plan = input([settled('alpha', 9090), settled('foxtrot', 8080)], ['alpha'], 0);
  const out = planDirectory({ ...plan, managed: vmsHolding({ alpha: [8080] }) }, { absentSince: new Map() });
  assert.equal(out.verdicts.get('alpha')?.kind, 'app');
  const foxtrot = out.verdicts.get('foxtrot');
  assert.equal(foxtrot?.kind === 'hold' && foxtrot.why, 'port-wait');
  assert.equal(foxtrot?.kind === 'hold' && foxtrot.waitsFor, 'alpha');
  assert.equal(foxtrot?.kind === 'hold' && foxtrot.code, 'APP_PORT_WAIT');
  assert.match(foxtrot?.kind === 'hold' ? foxtrot.reason : '', /foxtrot\.yaml: port 8080\/tcp is still published by the VM of app "alpha" \(apps\.d\/alpha\.yaml\)/);
  // Once alpha's VM holds only its new port, foxtrot goes.
  const after = planDirectory({ ...plan, managed: vmsHolding({ alpha: [9090] }) }, { absentSince: new Map() });
  assert.equal(after.verdicts.get('foxtrot')?.kind, 'app');
});

test('an app in the middle of an operation is not made to wait for a port; one that is not does wait', () => {
  const plan = input([settled('alpha', 9090), settled('foxtrot', 8080)], ['alpha', 'foxtrot'], 0);
  const busy = planDirectory({ ...plan, managed: vmsHolding({ alpha: [8080], foxtrot: [7070] }, ['foxtrot']) }, { absentSince: new Map() });
  assert.equal(busy.verdicts.get('foxtrot')?.kind, 'app');
  const idle = planDirectory({ ...plan, managed: vmsHolding({ alpha: [8080], foxtrot: [7070] }) }, { absentSince: new Map() });
  const foxtrot = idle.verdicts.get('foxtrot');
  assert.equal(foxtrot?.kind === 'hold' && foxtrot.why, 'port-wait', 'a running app moving onto the port waits too');
});

test('two apps swapping ports wait for each other: both are refused as a conflict saying neither can move first; a third waiting on them still waits', () => {
  const plan = input([settled('alpha', 8080), settled('bravo', 9090), settled('charlie', 7070)], ['alpha', 'bravo', 'charlie'], 0);
  const out = planDirectory({ ...plan, managed: vmsHolding({ alpha: [9090], bravo: [8080], charlie: [6060] }) }, { absentSince: new Map() });
  for (const [name, other] of [['alpha', 'bravo'], ['bravo', 'alpha']]) {
    const v = out.verdicts.get(name as string);
    assert.equal(v?.kind === 'hold' && v.why, 'conflict', name);
    assert.equal(v?.kind === 'hold' && v.code, 'APP_PORT_CONFLICT', name);
    assert.match(v?.kind === 'hold' ? v.reason : '', new RegExp(`published by the VM of app "${other}".*neither can move first`));
  }
  assert.equal(out.verdicts.get('charlie')?.kind, 'app', 'an app with nothing to wait for goes');
  // A third app asking for a port one of the two still holds waits for it.
  const withDelta = input([settled('alpha', 8080), settled('bravo', 9090), settled('delta', 6060)], ['alpha', 'bravo', 'delta'], 0);
  const chained = planDirectory({ ...withDelta, managed: vmsHolding({ alpha: [9090, 6060], bravo: [8080], delta: [5050] }) }, { absentSince: new Map() });
  const delta = chained.verdicts.get('delta');
  assert.equal(delta?.kind === 'hold' && delta.why, 'port-wait');
});

test('rule 19: the bytes of a vanished app reappearing under a new name mark both as a rename', () => {
  const guards: DeleteGuards = { absentSince: new Map() };
  const moved: ListedApp = { ...settled('b'), fileHash: 'h-a' } as ListedApp;
  const first = planDirectory(input([moved, settled('c')], ['a', 'c'], 0), guards);
  const b = first.verdicts.get('b');
  assert.equal(b?.kind === 'app' && b.renamedFrom, 'a');
  const later = planDirectory(input([moved, settled('c')], ['a', 'b', 'c'], 5000), guards);
  assert.deepEqual(later.verdicts.get('a'), { kind: 'gone', renamedTo: 'b' });
});

test('issue 13: an app whose record cannot be read is held, file or no file, and only it', () => {
  const guards: DeleteGuards = { absentSince: new Map() };
  const unreadable = (why: string) => ({ file: `state/apps/${why}.json`, running: false, ports: [], unreadable: { code: 'STATE_CORRUPT', message: `state/apps/${why}.json: corrupt state record` } });
  const plan = (now: number) => {
    const i = input([settled('m1'), settled('m3')], ['m2', 'm4'], now);
    const managed = new Map(i.managed);
    managed.set('m1', unreadable('m1'));
    managed.set('m5', unreadable('m5'));
    return planDirectory({ ...i, managed }, guards);
  };
  plan(0);
  const out = plan(5000);
  assert.deepEqual(out.verdicts.get('m1'), { kind: 'hold', why: 'record', reason: 'state/apps/m1.json: corrupt state record', code: 'STATE_CORRUPT' }, 'its file is there');
  assert.deepEqual(out.verdicts.get('m5'), { kind: 'hold', why: 'record', reason: 'state/apps/m5.json: corrupt state record', code: 'STATE_CORRUPT' }, 'its file is gone: no teardown');
  assert.equal(out.verdicts.get('m3')?.kind, 'app', 'a new app deploys');
  assert.equal(out.verdicts.get('m2')?.kind, 'hold', 'every other managed app is gone at once: the mass guard holds them');
  assert.equal(out.massGuardActive, true, 'apps held for their record do not hide that every other app vanished');
});
