// Issue 14 under fire: the supervisor runs as a real child process and is killed with SIGKILL at
// 20 random instants while it enables Tier 2, and at 20 more while it disables it. Each time one
// clean run must converge to: one gateway CVM, one DNS credential and one ZT domain in its admin
// store, every gateway app wholly on the gateway (manifest and what its guest booted) or wholly
// off it, and the other app never touched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { composeText, freePorts, waitUntil, type Harness } from '../helpers/harness.ts';
import { prng } from '../soak/ops.ts';
import { defer } from '../helpers/cleanup.ts';
import { childConfigToml, startSimDir, type SimDir } from '../helpers/child-stage.ts';
import { readGatewayStatus } from '../../src/status/store.ts';
import { writeGatewayToml } from '../helpers/gateway.ts';
import type { VmInfo } from '../../src/vmm/messages.ts';

const BIN = join(import.meta.dirname, '../../bin/dstack-supervisor.mjs');
const GATEWAY_APPS = ['alpha', 'bravo', 'delta', 'echo'];

function startChild(t: Parameters<typeof defer>[0], config: string): { child: ChildProcess; exited: Promise<number | null>; output: () => string } {
  const child = spawn(process.execPath, [BIN, 'run', '--config', config, '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  defer(t, () => {
    child.kill('SIGKILL');
    return exited;
  });
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-6000)));
  return { child, exited, output: () => output };
}

const manifestOf = (compose: string) => JSON.parse(compose || '{}') as { gateway_enabled?: boolean };

// Converged: the gateway in `phase`, each gateway app's VM running what its manifest says (no
// half-switch), gateway_enabled as `on`, one gateway CVM.
async function converged(stage: SimDir, stateDir: string, phase: string, on: boolean): Promise<VmInfo[] | undefined> {
  const status = await readGatewayStatus(stateDir);
  if (status?.phase !== phase || status.switching !== null) return undefined;
  const vms = stage.sim.state.list();
  if (vms.filter((v) => v.name === 'dstack-gateway').length !== 1) return undefined;
  for (const name of GATEWAY_APPS) {
    const vm = vms.find((v) => v.name === name);
    if (!vm || vm.status !== 'running' || vm.boot_progress !== 'done' || vm.boot_error) return undefined;
    if (manifestOf(vm.configuration!.compose_file).gateway_enabled !== on) return undefined;
    if (stage.sim.state.launchedCompose(vm.id) !== vm.configuration!.compose_file) return undefined;
  }
  return vms;
}

test('issue 14: SIGKILL at 20 random instants during enable and 20 during disable converges with no duplicate and no half-switched app', { timeout: 240_000 }, async (t) => {
  const seed = Number(process.env.CRASH_SEED ?? 14);
  const random = prng(seed);
  const stage = await startSimDir(t, 'dstack-gw-crash-', { bootDelayMs: 500, removeDelayMs: 40, shutdownDelayMs: 200, gatewayIssueDelayMs: 1500, kmsUrl: 'https://10.0.2.2:12001' });
  const { dir, appsDir, sim } = stage;
  // Slow enough that the kills below land inside the steps of enabling and disabling.
  sim.faults.setLatency(30);
  const stateDir = join(dir, 'state');
  const gatewayDir = join(dir, 'gateway.d');
  const configPath = join(dir, 'supervisor.toml');
  // The gateway's env is sealed for its app id, checked against the KMS's key.
  const settings = [`kms_public_key = "${sim.envKeys.kmsPublicKeyHex}"`, 'settle_ms = 50', 'resync_s = 1', 'delete_confirm_s = 0.2', 'backoff_initial_s = 1', 'backoff_max_s = 1', 'poll_s = 0.05'];
  await writeFile(configPath, `gateway_dir = "${gatewayDir}"\n${childConfigToml(stage, settings)}`);
  const [rpc, proxy, ...appPorts] = await freePorts(GATEWAY_APPS.length + 3);
  const ports = new Map([...GATEWAY_APPS, 'charlie'].map((name, i) => [name, appPorts[i]!]));
  for (const [name, port] of ports) {
    await writeFile(join(appsDir, `${name}.yaml`), `${composeText(port)}${GATEWAY_APPS.includes(name) ? 'x-dstack:\n  gateway: true\n' : ''}`, { mode: 0o644 });
  }
  const first = startChild(t, configPath);
  await sim.state.waitFor((vms) => [...ports.keys()].every((n) => vms.some((v) => v.name === n && v.boot_progress === 'done')), 20_000);
  first.child.kill('SIGKILL');
  await first.exited;
  const charlie = sim.state.list().find((v) => v.name === 'charlie')!;
  const charlieCalls = () => sim.faults.callLog().filter((c) => c.name === 'charlie' && c.method !== 'Status').length;
  const charlieBefore = charlieCalls();

  // Two gateway apps between UpdateVm and StartVm at once (the calls are the VMM's, in order).
  const overlaps = () => {
    let open: string | undefined;
    const found: string[] = [];
    for (const c of sim.faults.callLog()) {
      if (!GATEWAY_APPS.includes(c.name ?? '') || c.outcome !== 'ok') continue;
      if (c.method === 'UpdateVm' && open !== undefined && open !== c.name) found.push(`${c.name} updated while ${open} was not restarted`);
      if (c.method === 'UpdateVm') open = c.name;
      if (c.method === 'StartVm' && open === c.name) open = undefined;
    }
    return found;
  };

  // Kill a run at a random instant up to 1 s in, `rounds` times, then let one run converge.
  const underFire = async (rounds: number, phase: string, on: boolean) => {
    let midway = 0;
    for (let round = 0; round < rounds; round++) {
      const run = startChild(t, configPath);
      await new Promise((r) => setTimeout(r, 100 + Math.floor(random() * 900)));
      run.child.kill('SIGKILL');
      await run.exited;
      // A kill lands midway when the gateway, or an app, was still on its way.
      const status = await readGatewayStatus(stateDir);
      if (status !== null && (status.phase !== phase || status.switching !== null)) midway++;
    }
    assert.ok(midway >= 3, `only ${midway} of ${rounds} kills landed before ${phase}`);
    const last = startChild(t, configPath);
    const vms = await waitUntil(() => converged(stage, stateDir, phase, on), `convergence to ${phase} (seed ${seed})`, 60_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${JSON.stringify(sim.state.list().map((v) => [v.name, v.status, v.boot_progress, v.boot_error]))}\n${last.output()}`);
    });
    // One supervisor at a time: the next phase's runs start from here.
    last.child.kill('SIGKILL');
    await last.exited;
    assert.deepEqual(overlaps(), [], 'gateway apps are switched one at a time, across restarts too');
    return vms;
  };

  await writeGatewayToml({ config: { gateway_dir: gatewayDir } } as Harness, { rpc: rpc!, proxy: proxy! });
  const enabled = await underFire(20, 'serving', true);
  const gatewayVm = enabled.find((v) => v.name === 'dstack-gateway')!;
  const gw = sim.gateways.running(gatewayVm.id)!;
  assert.equal(gw.store.credentials.size, 1, 'one DNS credential');
  assert.equal(gw.store.domains.size, 1, 'one ZT domain');
  assert.equal(sim.faults.callLog().filter((c) => c.name === 'dstack-gateway' && c.method === 'CreateVm' && c.outcome === 'ok').length, 1, 'created once');
  const auth = JSON.parse(await readFile(stage.authPath, 'utf8'));
  assert.equal(auth.gatewayAppId, `0x${gatewayVm.app_id}`);

  await rm(join(gatewayDir, 'gateway.toml'));
  const disabled = await underFire(20, 'stopped', false);
  assert.equal(disabled.find((v) => v.name === 'dstack-gateway')?.status, 'stopped', 'stopped, not removed');
  assert.equal(JSON.parse(await readFile(stage.authPath, 'utf8')).gatewayAppId, '');
  assert.equal(charlieCalls(), charlieBefore, 'charlie untouched throughout');
  assert.equal(sim.state.list().find((v) => v.name === 'charlie')?.id, charlie.id);
});
