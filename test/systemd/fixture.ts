import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { exportFakeSystemd } from '../../src/sim/systemd.ts';
import type { FakeSystemdService } from '../../src/sim/systemd.ts';
import { FakeSystemd } from '../../src/sim/systemd-model.ts';
import type { FakeUnitBehaviour } from '../../src/sim/systemd-model.ts';
import { startPrivateBus } from '../../src/sim/systemd-private-bus.ts';
import type { PrivateBus } from '../../src/sim/systemd-private-bus.ts';
import { connectSystemd } from '../../src/systemd/manager.ts';
import type { SystemdManager } from '../../src/systemd/types.ts';
import { defer } from '../helpers/cleanup.ts';

// The three units init starts, in the order it starts them.
export const HOST_UNITS = ['dstack-auth-simple.service', 'gramine-sealing-key-provider.service', 'dstack-vmm.service'];

// A temp dir owned by the test and removed after it.
export async function makeTestDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'dstack-systemd-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  return dir;
}

// A real private dbus-daemon carrying a fake systemd1 with `units`, and a client connected to it.
export async function startFakeHost(
  t: TestContext,
  units: Record<string, FakeUnitBehaviour>,
  timeoutMs = 5_000,
): Promise<{ model: FakeSystemd; systemd: SystemdManager; bus: PrivateBus; service: FakeSystemdService }> {
  const dir = await makeTestDir(t);
  const bus = await startPrivateBus(dir);
  const model = new FakeSystemd(units);
  const service = await exportFakeSystemd(model, bus.address);
  const systemd = await connectSystemd({ address: bus.address, timeoutMs, readJournal: async (unit) => model.journal(unit) });
  defer(t, async () => {
    await systemd.close();
    await service.stop();
    model.shutdown();
    await bus.stop();
  });
  return { model, systemd, bus, service };
}

// Record every state change as `unit:ActiveState`, to check ordering.
export function recordTimeline(model: FakeSystemd): string[] {
  const timeline: string[] = [];
  model.on('unitChanged', (view) => timeline.push(`${view.name}:${view.ActiveState}`));
  return timeline;
}
