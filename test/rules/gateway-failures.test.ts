// Issue 14's failure modes, each with the operator-facing message in the gateway's status and the
// journal: apps stay on their direct ports, and the gateway CVM is never recreated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile, rename } from 'node:fs/promises';
import { composeText, freePorts, waitUntil, type Harness } from '../helpers/harness.ts';
import { byName, direct, gatewayEnabled, gatewayStatus, settledOnGateway, withGatewayApp, writeGatewayToml } from '../helpers/gateway.ts';
import type { IssuanceFault } from '../../src/sim/gateway-faults.ts';
import { rescan } from '../helpers/rules.ts';
import { formatGatewayStatus } from '../../src/status/gateway-text.ts';

async function assertAppsStayDirect(h: Harness, port: number): Promise<void> {
  assert.equal(gatewayEnabled(byName(h, 'shop')), false, 'shop stays on direct ports');
  assert.match(await direct(port), /app shop/);
}

const ISSUANCE: Array<[IssuanceFault, RegExp]> = [
  ['dns-forbidden', /Authentication error.*the DNS token cannot edit the zone's records: give it Zone > DNS > Edit/],
  ['rate-limited', /rateLimited.*Let's Encrypt's rate limit: issuance is retried later and the gateway CVM is kept/],
  ['no-zone', /no matching zone found.*no Cloudflare zone the token can see contains the domain/],
];

for (const [fault, message] of ISSUANCE) {
  test(`no certificate (${fault}): the status says why and what to do, apps stay on direct ports, the gateway CVM is kept`, { timeout: 60_000 }, async (t) => {
    const { h, port, ports } = await withGatewayApp(t);
    await writeGatewayToml(h, ports);
    const vm = await h.until((vms) => vms.some((v) => v.name === 'dstack-gateway'), 'the gateway CVM created');
    const id = vm.find((v) => v.name === 'dstack-gateway')!.id;
    const faults = await waitUntil(() => h.sim.gateways.faults(id), 'the gateway launched');
    faults.setIssuanceFault(fault);
    const status = await gatewayStatus(h, 'certificate', message);
    assert.equal(status.serving, false);
    assert.ok(h.logs.some((l) => l.priority === 4 && l.fields.APP === 'gateway' && message.test(String(l.fields.msg))), 'a warning in the journal');
    await assertAppsStayDirect(h, port);
    const calls = h.sim.faults.callLog().filter((c) => c.name === 'dstack-gateway');
    assert.deepEqual(calls.filter((c) => c.method === 'CreateVm' || c.method === 'RemoveVm').map((c) => c.method), ['CreateVm'], 'created once, never recreated');
  });
}

test('a missing token file: gateway.toml is refused naming the key, nothing is deployed', { timeout: 60_000 }, async (t) => {
  const { h, port, ports } = await withGatewayApp(t);
  await writeGatewayToml(h, ports, { withToken: false });
  const status = await gatewayStatus(h, 'invalid', /\[certificate\] token_file: .*cloudflare\.token/);
  assert.equal(status.serving, false);
  assert.equal(byName(h, 'dstack-gateway'), undefined, 'no gateway CVM');
  await assertAppsStayDirect(h, port);
});

test('a token file others can read is refused with the chmod to run', { timeout: 60_000 }, async (t) => {
  const { h, port, ports } = await withGatewayApp(t);
  await writeGatewayToml(h, ports);
  // Replaced before the supervisor reads it: same name, mode 0644.
  const token = `${h.config.gateway_dir}/cloudflare.token`;
  await writeFile(`${token}.new`, await readFile(token), { mode: 0o644 });
  await rename(`${token}.new`, token);
  await gatewayStatus(h, 'invalid', /token_file: .*chmod 600/);
  await assertAppsStayDirect(h, port);
});

test('a gateway CVM whose boot is denied: its boot error and log tail are in the status and the journal, it is started again, never recreated', { timeout: 60_000 }, async (t) => {
  const { h, port, ports } = await withGatewayApp(t);
  // No OS image is allowed from now on: the next guest to boot (the gateway) is denied.
  const doc = JSON.parse(await readFile(h.config.auth.config_path, 'utf8'));
  await writeFile(h.config.auth.config_path, JSON.stringify({ ...doc, osImages: [] }, null, 2));
  await writeGatewayToml(h, ports);
  const denied = /Failed to request app keys: .*Boot denied: .*OS image/;
  const status = await waitUntil(async () => {
    const s = await gatewayStatus(h, 'failed', /the gateway CVM .* failed to boot \(.*Boot denied.*\); started it again/);
    return (s.log_tail ?? []).length > 0 ? s : undefined;
  }, 'a failed gateway with its log tail');
  assert.equal(status.serving, false);
  assert.match(status.boot_error ?? '', denied);
  assert.ok((status.log_tail ?? []).some((line) => /boot\.error: Failed to request app keys: .*Boot denied/.test(line)), `log tail: ${JSON.stringify(status.log_tail)}`);
  const text = formatGatewayStatus(status);
  assert.match(text, new RegExp(`\\n  boot error: Failed to request app keys: .*\\n  last lines of its log \\(GET /logs\\?id=${status.vm_id} on dstack-vmm\\):\\n    `));
  const warned = h.logs.filter((l) => l.priority === 4 && l.fields.APP === 'gateway' && /failed to boot/.test(String(l.fields.msg)));
  assert.equal(warned.length, 1, 'one warning, however often it is started again');
  assert.match(String(warned[0]!.fields.BOOT_ERROR), denied);
  assert.ok((warned[0]!.fields.LOG_TAIL as string[]).some((line) => /boot\.error/.test(line)));
  await assertAppsStayDirect(h, port);
  const calls = h.sim.faults.callLog().filter((c) => c.name === 'dstack-gateway');
  assert.deepEqual(calls.filter((c) => c.method === 'CreateVm' || c.method === 'RemoveVm').map((c) => c.method), ['CreateVm'], 'created once, never recreated');
});

// Found while adding the log tail: the backoff was reset by every pass that saw the restarted
// guest booting, so a guest slower to fail than one backoff (any real one: boots take a minute)
// was started again at the same pace forever. Boots take 400 ms here, longer than the first
// backoffs (10 ms polls doubling): the 8th start must come at least 640 ms after the 7th.
test('a gateway CVM that fails every boot is started again with a backoff that keeps doubling through the boots in between', { timeout: 60_000 }, async (t) => {
  const { h, ports } = await withGatewayApp(t, { bootDelayMs: 400 });
  const doc = JSON.parse(await readFile(h.config.auth.config_path, 'utf8'));
  await writeFile(h.config.auth.config_path, JSON.stringify({ ...doc, osImages: [] }, null, 2));
  await writeGatewayToml(h, ports);
  const starts = await waitUntil(() => {
    const at = h.sim.faults.callLog().filter((c) => c.name === 'dstack-gateway' && c.method === 'StartVm' && c.outcome === 'ok').map((c) => c.at);
    return at.length >= 8 ? at : undefined;
  }, 'eight starts of the gateway CVM', 30_000);
  const gaps = starts.slice(1).map((at, i) => at - starts[i]!);
  assert.ok(gaps[6]! >= 600, `gaps between starts: ${gaps.join(', ')} ms`);
  assert.deepEqual(h.sim.faults.callLog().filter((c) => c.name === 'dstack-gateway' && c.method === 'CreateVm').length, 1, 'created once');
});

test('a gateway CVM whose process dies: the journal says it exited, with its log; it is started again, serves again, and apps keep their direct ports', { timeout: 60_000 }, async (t) => {
  const { h, port, ports } = await withGatewayApp(t);
  await writeGatewayToml(h, ports);
  // Not only serving: shop's own switch (a restart) must be over, or its direct port is down for it.
  await settledOnGateway(h, 'shop');
  const gatewayVm = byName(h, 'dstack-gateway')!;
  h.sim.faults.crashVm(gatewayVm.id);
  // The failed status lasts one short backoff before the restarted guest boots: its journal line stays.
  const exited = new RegExp(`^gateway: failed: the gateway CVM ${gatewayVm.id} exited \\(boot stage ".*", no boot error reported\\); started it again$`);
  const line = await waitUntil(() => h.logs.find((l) => l.priority === 4 && exited.test(String(l.fields.msg))), 'the warning that the gateway CVM exited');
  assert.equal(line.fields.BOOT_ERROR, '');
  assert.ok((line.fields.LOG_TAIL as string[]).some((l) => /vmm\.process\.exited: killed/.test(l)), `log tail: ${JSON.stringify(line.fields.LOG_TAIL)}`);
  assert.match(await direct(port), /app shop/);
  const back = await gatewayStatus(h, 'serving', /serving/);
  assert.equal(back.boot_error, null);
  assert.deepEqual(back.log_tail, []);
  assert.equal(byName(h, 'dstack-gateway')!.id, gatewayVm.id, 'the same VM');
});

test('self-signed (and no-domain) mode says plainly that it is not supported yet, and deploys nothing', { timeout: 60_000 }, async (t) => {
  const { h, port, ports } = await withGatewayApp(t);
  const dir = h.config.gateway_dir;
  await mkdir(dir, { recursive: true });
  await writeFile(`${dir}/gateway.toml`, `public_ip = "203.0.113.7"\nrpc_port = ${ports.rpc}\nproxy_port = ${ports.proxy}\n`, { mode: 0o644 });
  const status = await gatewayStatus(h, 'invalid', /mode = "self-signed" .* is not supported yet.*set domain and mode = "acme"/);
  assert.equal(status.serving, false);
  assert.equal(byName(h, 'dstack-gateway'), undefined, 'no gateway CVM');
  await assertAppsStayDirect(h, port);
});

// An app that never registers (the gateway refuses it): its guest boots anyway and keeps trying,
// on its direct port meanwhile. The status says so with a stable code and shows both sides: the
// guest's boot error, and what the gateway's admin Status lists for the app. The app is not
// restarted, which would kill it again and again while the gateway has a problem. Once the
// guest's checker gets through, the gateway's side says so (the boot error stays until a restart).
test('an app the gateway will not register runs on its direct port, its status gives its boot error and the gateway\'s view, and it is not restarted', { timeout: 60_000 }, async (t) => {
  const { h, ports } = await withGatewayApp(t, { gatewayCheckIntervalMs: 600 });
  await writeGatewayToml(h, ports);
  await gatewayStatus(h, 'serving', /serving/);
  const gatewayVm = byName(h, 'dstack-gateway')!;
  // shop first moves onto the gateway and registers: the one instance the gateway lists.
  await waitUntil(() => [...(h.sim.gateways.running(gatewayVm.id)?.store.instances.values() ?? [])].some((i) => i.appId === byName(h, 'shop')?.app_id), 'shop registered');
  const faults = h.sim.gateways.faults(gatewayVm.id)!;
  faults.failNext('RegisterCvm', { count: 1000, message: 'registrations are closed' });
  const [port] = await freePorts(1);
  await h.put('blog.yaml', `${composeText(port!)}x-dstack:\n  gateway: true\n`);
  const absent = /; the gateway's view \(admin Status\): no instance of app [0-9a-f]{40} is registered \(it lists 1 instance\(s\) of other apps\)/;
  const status = await waitUntil(async () => (await h.statuses()).find((s) => s.app === 'blog' && s.phase === 'running' && s.code === 'GATEWAY_UNREGISTERED' && absent.test(s.last_error ?? '')), 'blog running, unregistered, with the gateway\'s view', 30_000);
  assert.match(status.last_error ?? '', /^dstack-gateway registration failed, the app has no ingress route: .*registrations are closed; the gateway's view/);
  assert.ok(status.last_error?.includes(`no instance of app ${status.app_id} is registered`), status.last_error ?? '');
  assert.match(await direct(port!), /app blog/);
  const starts = () => h.sim.faults.callLog().filter((c) => c.name === 'blog' && (c.method === 'StartVm' || c.method === 'CreateVm')).length;
  const before = starts();
  await rescan(h);
  await rescan(h);
  assert.equal(starts(), before, 'not restarted');
  faults.reset();
  const instance = byName(h, 'blog')!.instance_id!;
  const registered = new RegExp(`; the gateway's view \\(admin Status\\): this VM's instance ${instance} is registered at 10\\.8\\.0\\.\\d+ \\(the guest's checker registered it after boot; the boot error stays until the VM restarts\\)$`);
  await waitUntil(async () => (await h.statuses()).find((s) => s.app === 'blog' && s.code === 'GATEWAY_UNREGISTERED' && registered.test(s.last_error ?? '')), 'blog\'s status with the gateway listing it', 30_000);
  assert.equal(starts(), before, 'still not restarted');
});
