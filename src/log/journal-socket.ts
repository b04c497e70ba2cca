// Sends datagrams to journald's native socket. Node has no AF_UNIX datagram sockets (`dgram` is
// udp only, docs/platform-notes.md §6), so the socket is the prebuilt N-API addon of
// node-unix-socket 0.2.7 (napi-rs; no compiler, one binary for every Node version), its
// DgramSocketWrap used directly: the package's own loader runs process.report.getReport() to
// tell glibc from musl, which with its wrapper cost 5.4 MB of RSS against 2.9 MB for the addon
// alone (bare Node 24, --optimize-for-size --max-opt=1).
//
// What the addon does, and how this module copes (its src/dgram.rs):
// - sendTo() calls sendmsg() on a non-blocking socket at once, and calls back synchronously on
//   success or error. On EAGAIN (journald's queue full) it queues the datagram and polls for
//   writability, and that poll is never switched back, so the process would spin: a send that
//   did not call back is abandoned by closing the socket (which drops the queue) and reported
//   as not sent, for the caller to write the entry elsewhere. No entry is sent twice.
// - The socket's poll handle keeps the event loop alive and cannot be unref'd: a socket opened
//   for a send is closed at the end of that turn of the loop (setImmediate), so every entry
//   logged in one turn shares it and a finished command still exits.
import { createRequire } from 'node:module';
import { describeError } from '../errors.ts';

// Where journald listens for native entries (sd_journal_sendv(3) sends there).
export const JOURNAL_SOCKET = '/run/systemd/journal/socket';

type DgramSocketWrap = {
  init(self: DgramSocketWrap): void;
  startRecv(): void;
  sendTo(buf: Buffer, offset: number, length: number, path: string, done: (err?: Error) => void): void;
  close(): void;
};
type Addon = { DgramSocketWrap: new (events: { emit(event: string): boolean }) => DgramSocketWrap };

let loaded: { addon: Addon } | { problem: string } | undefined;

// The addon, loaded once. In the esbuild bundle `require` is defined and esbuild copies the
// .node file beside the chunks (scripts/bundle.mjs); running the sources, it comes from
// node_modules.
function loadAddon(): { addon: Addon } | { problem: string } {
  if (loaded === undefined) {
    try {
      // Literal names: esbuild rewrites only a require() of a string.
      const addon = (typeof require === 'function' ? require('node-unix-socket-linux-x64-gnu') : createRequire(import.meta.url)('node-unix-socket-linux-x64-gnu')) as Addon;
      loaded = { addon };
    } catch (err) {
      // The first line: Node appends the require stack, and a journal line is one line.
      loaded = { problem: `cannot load node-unix-socket's addon (${describeError(err).split('\n')[0]})` };
    }
  }
  return loaded;
}

export type JournalSender = {
  // Why no entry can be sent (the addon is missing: another CPU or libc), or undefined.
  readonly problem: string | undefined;
  // Send one datagram without blocking; false when it was not sent (no journald, its queue full,
  // too large), and the caller keeps the entry. Never throws.
  send(datagram: Buffer): boolean;
};

function openSocket(addon: Addon): DgramSocketWrap {
  // The addon reports receive errors through `emit('_error')`; nothing is received on a socket
  // that is never bound, and send errors come through the callback.
  const socket = new addon.DgramSocketWrap({ emit: () => true });
  socket.init(socket);
  // Sets up the poll handle that close() and the EAGAIN path rely on.
  socket.startRecv();
  return socket;
}

// A sender to the socket at `path` (journald's unless a test has its own).
export function openJournalSender(path: string = JOURNAL_SOCKET): JournalSender {
  const found = loadAddon();
  let socket: DgramSocketWrap | undefined;
  const close = (): void => {
    const open = socket;
    socket = undefined;
    try {
      open?.close();
    } catch {
      // Closing an fd we own cannot fail in a way a caller could act on.
    }
  };
  return {
    problem: 'problem' in found ? found.problem : undefined,
    send(datagram) {
      if ('problem' in found) return false;
      let sent = false;
      try {
        if (socket === undefined) {
          socket = openSocket(found.addon);
          setImmediate(close);
        }
        socket.sendTo(datagram, 0, datagram.length, path, (err) => (sent = err === undefined || err === null));
      } catch {
        // The addon throws when it cannot make a socket (EMFILE) or poll it: not sent either.
        sent = false;
      }
      if (!sent) close();
      return sent;
    },
  };
}
