import * as z from 'zod';
import { Message, Variant, sessionBus } from './dbus.ts';
import type { MessageBus } from './dbus.ts';
import { createSignalFeed } from './signal-watch.ts';
import type { SignalFeed } from './signal-watch.ts';
import { UnitFileChangeSchema, UnitStateSchema } from './types.ts';
import type { JobRemoved, SystemdBackend } from './types.ts';

const SYSTEMD = 'org.freedesktop.systemd1';
const MANAGER_PATH = '/org/freedesktop/systemd1';
const MANAGER_IFACE = 'org.freedesktop.systemd1.Manager';
const UNIT_IFACE = 'org.freedesktop.systemd1.Unit';
const PROPERTIES_IFACE = 'org.freedesktop.DBus.Properties';
const DEFAULT_SYSTEM_BUS = 'unix:path=/run/dbus/system_bus_socket';
// libdbus' default method-call timeout; dbus-next has none, and a call to a wedged systemd
// would otherwise never settle.
const DEFAULT_CALL_TIMEOUT_MS = 25_000;

// Where to find the bus; defaults follow libsystemd (DBUS_SYSTEM_BUS_ADDRESS, then the socket).
export type DbusBackendOptions = {
  address?: string | undefined;
  callTimeoutMs?: number | undefined;
};

const JobRemovedBody = z.tuple([z.number(), z.string(), z.string(), z.string()]);
const ObjectPathBody = z.tuple([z.string()]);
const EnableReplyBody = z.tuple([z.boolean(), z.array(UnitFileChangeSchema)]);
const PropertiesBody = z.tuple([z.record(z.string(), z.instanceof(Variant))]);

// Connect to the system bus (or `address`) and speak to org.freedesktop.systemd1 over it.
export async function connectDbusBackend(options: DbusBackendOptions = {}): Promise<SystemdBackend> {
  const address = options.address ?? process.env['DBUS_SYSTEM_BUS_ADDRESS'] ?? DEFAULT_SYSTEM_BUS;
  const callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  // Plain Errors: the manager turns them into SYSTEMD_BUS errors that name the unit at hand.
  const busError = (reason: string, cause?: unknown): Error => new Error(`D-Bus at ${address}: ${reason}`, { cause });

  const bus = sessionBus({ busAddress: address });
  const feeds = new Set<Pick<SignalFeed<unknown>, 'fail' | 'watch'>>();
  const jobFeeds = new Set<SignalFeed<JobRemoved>>();
  const unitFeeds = new Map<SignalFeed<void>, string>();
  let broken: Error | undefined;

  // dbus-next leaves pending calls unsettled when the socket dies: fail everything ourselves.
  const pendingRejects = new Set<(err: unknown) => void>();
  bus.on('error', (err: unknown) => {
    broken ??= busError(err instanceof Error ? err.message : String(err), err);
    for (const reject of pendingRejects) reject(broken);
    for (const feed of feeds) feed.fail(broken);
  });
  await connected(bus, callTimeoutMs).catch((err: unknown) => {
    bus.disconnect();
    throw busError(`cannot connect: ${err instanceof Error ? err.message : String(err)}`, err);
  });

  bus.on('message', (msg: Message) => {
    if (msg.interface === MANAGER_IFACE && msg.member === 'JobRemoved') {
      const parsed = JobRemovedBody.safeParse(msg.body);
      if (!parsed.success) return;
      const [id, job, unit, result] = parsed.data;
      for (const feed of jobFeeds) feed.push({ id, job, unit, result });
    } else if (msg.interface === PROPERTIES_IFACE && msg.member === 'PropertiesChanged' && msg.body[0] === UNIT_IFACE) {
      for (const [feed, path] of unitFeeds) if (path === msg.path) feed.push();
    }
  });

  const call = (path: string, iface: string, member: string, signature = '', body: unknown[] = []) =>
    callBus(new Message({ destination: SYSTEMD, path, interface: iface, member, signature, body }));
  const callBus = (msg: Message): Promise<unknown[]> => {
    if (broken) return Promise.reject(broken);
    return new Promise<unknown[]>((resolve, reject) => {
      const settle = (outcome: () => void): void => {
        clearTimeout(timer);
        pendingRejects.delete(fail);
        outcome();
      };
      const fail = (err: unknown): void => settle(() => reject(err));
      const timer = setTimeout(() => fail(busError(`no reply to ${msg.member} within ${callTimeoutMs} ms`)), callTimeoutMs);
      pendingRejects.add(fail);
      bus.call(msg).then((reply) => settle(() => resolve(reply?.body ?? [])), fail);
    });
  };
  const callDaemon = (member: 'AddMatch' | 'RemoveMatch', rule: string) =>
    callBus(new Message({ destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus', member, signature: 's', body: [rule] }));

  const jobRule = `type='signal',sender='${SYSTEMD}',path='${MANAGER_PATH}',interface='${MANAGER_IFACE}',member='JobRemoved'`;
  await callDaemon('AddMatch', jobRule);

  return {
    async subscribe() {
      await call(MANAGER_PATH, MANAGER_IFACE, 'Subscribe');
    },
    async watchJobs() {
      const feed: SignalFeed<JobRemoved> = createSignalFeed(() => {
        jobFeeds.delete(feed);
        feeds.delete(feed);
      });
      jobFeeds.add(feed);
      feeds.add(feed);
      return feed.watch;
    },
    async watchUnit(unitPath) {
      const rule = `type='signal',sender='${SYSTEMD}',path='${unitPath}',interface='${PROPERTIES_IFACE}',member='PropertiesChanged'`;
      await callDaemon('AddMatch', rule);
      const feed: SignalFeed<void> = createSignalFeed(() => {
        unitFeeds.delete(feed);
        feeds.delete(feed);
        // A leftover rule only costs a few unused signals; never fail an operation over it.
        callDaemon('RemoveMatch', rule).catch(() => undefined);
      });
      unitFeeds.set(feed, unitPath);
      feeds.add(feed);
      return feed.watch;
    },
    async queueJob(method, name) {
      return ObjectPathBody.parse(await call(MANAGER_PATH, MANAGER_IFACE, method, 'ss', [name, 'replace']))[0];
    },
    async loadUnit(name) {
      return ObjectPathBody.parse(await call(MANAGER_PATH, MANAGER_IFACE, 'LoadUnit', 's', [name]))[0];
    },
    async readUnitState(unitPath) {
      const [props] = PropertiesBody.parse(await call(unitPath, PROPERTIES_IFACE, 'GetAll', 's', [UNIT_IFACE]));
      return UnitStateSchema.parse(Object.fromEntries(Object.entries(props).map(([key, v]) => [key, v.value])));
    },
    async enableUnitFiles(names) {
      const reply = await call(MANAGER_PATH, MANAGER_IFACE, 'EnableUnitFiles', 'asbb', [names, false, false]);
      return EnableReplyBody.parse(reply)[1];
    },
    async reload() {
      await call(MANAGER_PATH, MANAGER_IFACE, 'Reload');
    },
    async close() {
      broken ??= busError('connection closed');
      for (const reject of pendingRejects) reject(broken);
      for (const feed of feeds) feed.watch.close();
      bus.disconnect();
    },
  };
}

// Resolve once the bus said Hello back, or reject on the first connection error or timeout.
function connected(bus: MessageBus, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    bus.once('connect', () => {
      clearTimeout(timer);
      resolve();
    });
    bus.once('error', (err: unknown) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
