// Issue 14 end to end on the simulated host: a gateway.toml dropped into gateway.d brings up the
// gateway CVM, configures it through its admin API, waits for its certificate, and moves the apps
// that ask for it onto it, one restart each, touching no other app; every app keeps answering on
// its direct port, and the gateway app answers on https://<app id>-<port>.<domain>. Removing the
// file moves them back first, then stops (never removes) the gateway CVM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startHarness, composeText, freePorts, waitUntil, type Harness } from '../helpers/harness.ts';
import { readGatewayStatus } from '../../src/status/store.ts';
import { tlsPaths } from '../../src/init/tls.ts';
import { DOMAIN, byName, direct, gatewayEnabled, viaGateway, writeGatewayToml } from '../helpers/gateway.ts';
import type { VmInfo } from '../../src/vmm/messages.ts';

const GATEWAY_APPS = ['alpha', 'bravo', 'charlie'];
const DIRECT_APPS = ['delta', 'echo'];

// The mutating calls to the gateway apps' VMs, in order, as `name:Method`.
const switchCalls = (h: Harness, from: number) =>
  h.sim.faults
    .callLog()
    .slice(from)
    .filter((c) => GATEWAY_APPS.includes(c.name ?? '') && ['UpdateVm', 'StartVm'].includes(c.method) && c.outcome === 'ok')
    .map((c) => `${c.name}:${c.method}`);

// One at a time: each app's UpdateVm, then its StartVm, then the next app's.
const oneByOne = GATEWAY_APPS.flatMap((name) => [`${name}:UpdateVm`, `${name}:StartVm`]);

test('gateway.toml on and off with 5 apps running: gateway apps move one at a time with one restart each, others untouched, no failed boot', { timeout: 120_000 }, async (t) => {
  const h = await startHarness(t);
  const ports = await freePorts(GATEWAY_APPS.length + DIRECT_APPS.length + 2);
  const portOf = new Map([...GATEWAY_APPS, ...DIRECT_APPS].map((name, i) => [name, ports[i]!]));
  const [rpc, proxy] = ports.slice(-2) as [number, number];
  for (const name of GATEWAY_APPS) await h.put(`${name}.yaml`, `${composeText(portOf.get(name)!)}x-dstack:\n  gateway: true\n`);
  for (const name of DIRECT_APPS) await h.put(`${name}.yaml`, composeText(portOf.get(name)!));
  await h.start();
  const vms = new Map<string, VmInfo>();
  for (const name of portOf.keys()) vms.set(name, await h.deployed(name));
  for (const [name, port] of portOf) assert.match(await direct(port), new RegExp(`app ${name}`));
  assert.ok(GATEWAY_APPS.every((name) => !gatewayEnabled(vms.get(name))), 'no gateway yet: direct ports only');
  const directCalls = () => h.sim.faults.callLog().filter((c) => DIRECT_APPS.includes(c.name ?? '') && c.method !== 'Status').length;
  const directBefore = directCalls();
  const enableFrom = h.sim.faults.callLog().length;

  await writeGatewayToml(h, { rpc, proxy });
  const serving = await waitUntil(async () => {
    const status = await readGatewayStatus(h.config.state_dir);
    const moved = GATEWAY_APPS.every((name) => gatewayEnabled(byName(h, name)) && byName(h, name)?.boot_progress === 'done');
    return status?.phase === 'serving' && status.switching === null && moved ? status : undefined;
  }, 'the gateway serving and every gateway app moved onto it', 60_000);
  assert.equal(serving.domain, DOMAIN);
  assert.deepEqual(switchCalls(h, enableFrom), oneByOne, 'each gateway app upgraded in place and restarted once, one after the other');
  assert.equal(directCalls(), directBefore, 'the other apps untouched');
  const ca = await readFile(tlsPaths(join(h.dir, 'sim', 'tls')).caCert, 'utf8');
  const gw = await h.sim.gateways.waitRunning(byName(h, 'dstack-gateway')!.id);
  for (const name of GATEWAY_APPS) {
    const vm = byName(h, name)!;
    assert.equal(vm.id, vms.get(name)!.id, `${name} keeps its VM`);
    assert.match(await direct(portOf.get(name)!), new RegExp(`app ${name}`), `${name} still answers on its direct port`);
    // The port in the name is the CVM's: compose's "<port>:80" publishes the container on CVM port <port>.
    const name443 = `${vm.app_id}-${portOf.get(name)}.${DOMAIN}`;
    const answer = await viaGateway(proxy, name443, ca).catch((e: Error) => `${e.message}\n${gw.logs().join('\n')}`);
    assert.match(answer, new RegExp(`app ${name}`), `${name} answers on https://${name443}`);
    const status = (await h.statuses()).find((s) => s.app === name)!;
    assert.ok(status.urls.includes(`https://${name443}:${proxy}`), JSON.stringify(status.urls));
  }
  const gatewayVm = byName(h, 'dstack-gateway')!;
  assert.equal(JSON.parse(await readFile(h.config.auth.config_path, 'utf8')).gatewayAppId, `0x${gatewayVm.app_id}`);

  const disableFrom = h.sim.faults.callLog().length;
  await rm(join(h.config.gateway_dir, 'gateway.toml'));
  await waitUntil(async () => ((await readGatewayStatus(h.config.state_dir))?.phase === 'stopped' ? true : undefined), 'the gateway stopped', 60_000);
  assert.deepEqual(switchCalls(h, disableFrom), oneByOne, 'each gateway app moved back in place and restarted once, one after the other');
  for (const name of GATEWAY_APPS) {
    const vm = byName(h, name)!;
    assert.equal(gatewayEnabled(vm), false, `${name} back on direct ports`);
    assert.equal(vm.status, 'running');
  }
  assert.equal(directCalls(), directBefore, 'the other apps untouched');
  assert.equal(byName(h, 'dstack-gateway')?.status, 'stopped', 'the gateway CVM is stopped, not removed');
  assert.equal(JSON.parse(await readFile(h.config.auth.config_path, 'utf8')).gatewayAppId, '');
  for (const [name, port] of portOf) assert.match(await direct(port), new RegExp(`app ${name}`), `${name} answers on its direct port`);
  const failedBoots = h.sim.state.list().filter((v) => v.events.some((e) => e.event === 'boot.error'));
  assert.deepEqual(failedBoots.map((v) => v.name), [], 'no failed boot anywhere');
});

// Found by the kill -9 test: a supervisor started after gateway.toml went built every spec before
// Tier 2 had looked, so all gateway apps moved back at once; and the gateway was stopped while the
// last one was still restarting.
test('after a restart, apps still move back one at a time and the gateway stops only after the last runs again', { timeout: 120_000 }, async (t) => {
  const h = await startHarness(t);
  const [alpha, bravo, rpc, proxy] = await freePorts(4);
  await h.put('alpha.yaml', `${composeText(alpha!)}x-dstack:\n  gateway: true\n`);
  await h.put('bravo.yaml', `${composeText(bravo!)}x-dstack:\n  gateway: true\n`);
  await h.start();
  await writeGatewayToml(h, { rpc: rpc!, proxy: proxy! });
  const done = (phase: string) => async () => {
    const status = await readGatewayStatus(h.config.state_dir);
    return status?.phase === phase && status.switching === null ? true : undefined;
  };
  await waitUntil(done('serving'), 'serving', 60_000);
  await h.stop();
  const from = h.sim.faults.callLog().length;
  await rm(join(h.config.gateway_dir, 'gateway.toml'));
  await h.start();
  await waitUntil(done('stopped'), 'stopped', 60_000);
  const calls = h.sim.faults.callLog().slice(from).filter((c) => ['UpdateVm', 'StartVm', 'StopVm'].includes(c.method)).map((c) => `${c.name}:${c.method}`);
  assert.deepEqual(calls, ['alpha:UpdateVm', 'alpha:StartVm', 'bravo:UpdateVm', 'bravo:StartVm', 'dstack-gateway:StopVm']);
});

// Watched over time, not at one instant: once the gateway serves and its app runs on it, the
// supervisor goes quiet (two resync periods without a mutating VMM call or an allowlist write),
// and a resync puts back what someone else changed: gatewayAppId cleared by hand, the gateway CVM
// stopped by hand.
test('serving, Tier 2 goes quiet; a resync restores gatewayAppId and a gateway CVM stopped by hand', { timeout: 120_000 }, async (t) => {
  const h = await startHarness(t);
  const [shopPort, rpc, proxy] = await freePorts(3);
  await h.put('shop.yaml', `${composeText(shopPort!)}x-dstack:\n  gateway: true\n`);
  await h.start();
  await writeGatewayToml(h, { rpc: rpc!, proxy: proxy! });
  await waitUntil(async () => {
    const status = await readGatewayStatus(h.config.state_dir);
    return status?.phase === 'serving' && status.switching === null && gatewayEnabled(byName(h, 'shop')) && byName(h, 'shop')?.boot_progress === 'done' ? true : undefined;
  }, 'serving with shop on it', 60_000);
  const mutating = () => h.sim.faults.callLog().filter((c) => c.method !== 'Status' && c.method !== 'GetInfo' && c.method !== 'ListImages').length;
  const authText = () => readFile(h.config.auth.config_path, 'utf8');
  const calls = mutating();
  const auth = await authText();
  const resyncs = h.decisions('shop', 'noop').length;
  await waitUntil(() => h.decisions('shop', 'noop').length >= resyncs + 2, 'two more resyncs', 15_000);
  await waitUntil(async () => ((await readGatewayStatus(h.config.state_dir))?.updated_at ? true : undefined), 'gateway status');
  assert.equal(mutating(), calls, 'no VMM change over two resyncs');
  assert.equal(await authText(), auth, 'no allowlist write over two resyncs');

  const gatewayVm = byName(h, 'dstack-gateway')!;
  const doc = JSON.parse(auth);
  await writeFile(h.config.auth.config_path, JSON.stringify({ ...doc, gatewayAppId: '' }, null, 2));
  await h.supervisor().vmm.stopVm(gatewayVm.id);
  await waitUntil(async () => {
    const restored = JSON.parse(await authText()).gatewayAppId === `0x${gatewayVm.app_id}`;
    const vm = byName(h, 'dstack-gateway');
    return restored && vm?.status === 'running' && vm.boot_progress === 'done' && vm.id === gatewayVm.id ? true : undefined;
  }, 'gatewayAppId restored and the same gateway CVM running again', 30_000);
});
