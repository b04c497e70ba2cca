// A real sd_notify endpoint for tests: python3 binds an AF_UNIX SOCK_DGRAM socket (Node cannot)
// and prints each datagram as one JSON string per line.
import { createInterface } from 'node:readline';
import { execa } from 'execa';

const SCRIPT = `
import json, socket, sys
address = sys.argv[1]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind('\\0' + address[1:] if address.startswith('@') else address)
print(json.dumps('listening'), flush=True)
while True:
    # recv() takes no ancillary data, so the fd of systemd-notify's BARRIER=1 is closed here,
    # which is what releases the barrier, as systemd does once it has processed a message.
    print(json.dumps(sock.recv(65536).decode()), flush=True)
`;

export type Receiver = {
  // The next datagram other than the barrier, as its assignments ("READY=1", "STATUS=…").
  next(timeoutMs?: number): Promise<string[]>;
  // Datagrams received and not yet taken by next(), barriers left out.
  waiting(): string[][];
  close(): void;
};

// Bind a receiver at `address` (a path, or `@name` for the abstract namespace).
export async function startReceiver(address: string): Promise<Receiver> {
  const child = execa('python3', ['-c', SCRIPT, address], { stdin: 'ignore', stderr: 'inherit', reject: false });
  const queue: string[][] = [];
  const waiters: Array<(d: string[]) => void> = [];
  let listening!: () => void;
  const bound = new Promise<void>((resolve) => (listening = resolve));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const text = JSON.parse(line) as string;
    if (text === 'listening') return listening();
    if (text === 'BARRIER=1') return;
    const datagram = text.split('\n');
    const waiter = waiters.shift();
    if (waiter) waiter(datagram);
    else queue.push(datagram);
  });
  const exited = child.then((r) => {
    throw new Error(`notify receiver exited before binding ${address}: exit ${r.exitCode}`);
  });
  await Promise.race([bound, exited]);
  return {
    next(timeoutMs = 5_000) {
      const queued = queue.shift();
      if (queued) return Promise.resolve(queued);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no datagram on ${address} within ${timeoutMs} ms`)), timeoutMs);
        waiters.push((d) => {
          clearTimeout(timer);
          resolve(d);
        });
      });
    },
    waiting: () => queue.splice(0),
    close: () => void child.kill(),
  };
}
