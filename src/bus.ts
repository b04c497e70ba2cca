import mitt from 'mitt';
import type { Emitter, EventType } from 'mitt';

// Every event name on the bus. Events are hints (docs/apps-dir.md rule 9): none carries a file's content,
// and a handler that receives one re-reads the world instead of trusting the event.
export const BUS_EVENTS = {
  rescan: 'rescan',
  watcherDegraded: 'watcher-degraded',
  watcherArmed: 'watcher-armed',
} as const;

// One of the names in BUS_EVENTS.
export type BusEventName = (typeof BUS_EVENTS)[keyof typeof BUS_EVENTS];

// Why a rescan was asked for; a rescan always re-lists the whole directory.
export type RescanReason = 'fs-event' | 'watcher-armed' | 'watcher-degraded';

// The payload of each event.
export type BusEvents = {
  // `names` (fs-event): the entries of apps.d events came for since the last rescan, so a scan
  // can skip the others (issue 18); absent, any entry may have changed.
  [BUS_EVENTS.rescan]: { dir: string; reason: RescanReason; names?: readonly string[] };
  // The watcher stopped (inotify error, or apps.d was removed or replaced); only resync runs until
  // `watcher-armed`. `retryInMs` is when the next re-arm attempt happens.
  [BUS_EVENTS.watcherDegraded]: { dir: string; reason: string; code: string; retryInMs: number };
  [BUS_EVENTS.watcherArmed]: { dir: string; ino: number };
};

// The typed bus shared by watchers (emit) and handlers (listen).
export type Bus = Emitter<BusEvents>;

// mitt ships CJS-flavoured typings, so under nodenext its default import is typed as the module
// object; at run time the ESM build's default export is the factory itself.
const createEmitter = mitt as unknown as <E extends Record<EventType, unknown>>() => Emitter<E>;

// A new, empty bus.
export function createBus(): Bus {
  return createEmitter<BusEvents>();
}
