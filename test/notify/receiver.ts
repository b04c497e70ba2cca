// A real sd_notify endpoint for tests (../helpers/dgram-receiver.ts), reading each datagram as
// its `KEY=value` assignments.
import { bindDatagramReceiver } from '../helpers/dgram-receiver.ts';

export type Receiver = {
  // The next datagram other than the barrier, as its assignments ("READY=1", "STATUS=…").
  next(timeoutMs?: number): Promise<string[]>;
  close(): void;
};

// Bind a receiver at `address` (a path, or `@name` for the abstract namespace).
export async function startReceiver(address: string): Promise<Receiver> {
  const receiver = await bindDatagramReceiver(address);
  return {
    async next(timeoutMs) {
      for (;;) {
        const text = (await receiver.next(timeoutMs)).toString();
        if (text !== 'BARRIER=1') return text.split('\n');
      }
    },
    close: receiver.close,
  };
}
