// A real AF_UNIX SOCK_DGRAM endpoint for tests: python3 binds it (Node cannot) and prints each
// datagram it receives as one base64 line. A paused receiver reads nothing until drain(), so
// what is sent queues in the kernel until the queue is full (net.unix.max_dgram_qlen).
import { createInterface } from 'node:readline';
import { execa } from 'execa';

const SCRIPT = `
import base64, socket, sys
address, paused = sys.argv[1], sys.argv[2] == 'paused'
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind('\\0' + address[1:] if address.startswith('@') else address)
print('listening', flush=True)
if paused:
    sys.stdin.readline()
while True:
    # recv() takes no ancillary data, so a file descriptor sent along (systemd-notify's
    # BARRIER=1) is closed here, as systemd does once it has processed a message.
    print(base64.b64encode(sock.recv(1 << 20)).decode(), flush=True)
`;

export type DatagramReceiver = {
  // The next datagram not yet taken.
  next(timeoutMs?: number): Promise<Buffer>;
  // Start reading (a paused receiver).
  drain(): void;
  close(): void;
};

// Bind a receiver at `address` (a path, or `@name` for the abstract namespace).
export async function bindDatagramReceiver(address: string, options: { paused?: boolean } = {}): Promise<DatagramReceiver> {
  const child = execa('python3', ['-c', SCRIPT, address, options.paused ? 'paused' : 'reading'], { stdin: 'pipe', stderr: 'inherit', reject: false });
  const queue: Buffer[] = [];
  const waiters: Array<(d: Buffer) => void> = [];
  let listening!: () => void;
  const bound = new Promise<void>((resolve) => (listening = resolve));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (line === 'listening') return listening();
    const datagram = Buffer.from(line, 'base64');
    const waiter = waiters.shift();
    if (waiter) waiter(datagram);
    else queue.push(datagram);
  });
  const exited = child.then((r) => {
    throw new Error(`datagram receiver exited before binding ${address}: exit ${r.exitCode}`);
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
    drain: () => void child.stdin!.write('\n'),
    close: () => void child.kill(),
  };
}
