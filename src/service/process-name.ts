// The name `ps` and `systemctl status` show for the service: Node names its main thread
// "MainThread". Written to /proc/self/comm rather than set through process.title, which would
// overwrite the command line that shows the Node flags the launcher passed.
import { writeFileSync } from 'node:fs';

// Linux keeps 15 bytes of it: "dstack-supervis".
export const PROCESS_NAME = 'dstack-supervisor';

// Best effort: off Linux, or where /proc is not writable, the name stays as it was.
export function nameProcess(): void {
  try {
    writeFileSync('/proc/self/comm', PROCESS_NAME);
  } catch {
    // The name is cosmetic; the service runs the same without it.
  }
}
