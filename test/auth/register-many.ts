// Child process for the concurrency test: registers COUNT apps one after another, each its own
// locked read-modify-write, so two of these fight for the lock as hard as they can.
// Usage: register-many.ts <allowlist> <app-id-prefix> <count>
import { openAllowlist } from '../../src/auth/allowlist.ts';

const [path, prefix, countText] = process.argv.slice(2);
if (path === undefined || prefix === undefined || countText === undefined) {
  process.stderr.write('usage: register-many.ts <allowlist> <app-id-prefix> <count>\n');
  process.exit(2);
}

let writes = 0;
const allowlist = openAllowlist(path, { onWrite: () => writes++ });
for (let i = 0; i < Number(countText); i++) {
  const n = i.toString(16);
  await allowlist.addHash(`${prefix}${n.padStart(40 - prefix.length, '0')}`, `0x${n.padStart(64, 'f')}`);
  // Tells the test the lock fight is on, so it starts the reader while writes are still coming.
  if (i === 0) process.stdout.write('registering\n');
}
await allowlist.close();
process.stdout.write(`${JSON.stringify({ writes })}\n`);
