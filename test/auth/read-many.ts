// Child process for the concurrency test: reads the allowlist COUNT times, as auth-simple does on
// every request, and reports how many reads were not valid JSON or lost the operator's key.
// Usage: read-many.ts <allowlist> <count>
import { readFileSync } from 'node:fs';

const [path, countText] = process.argv.slice(2);
if (path === undefined || countText === undefined) {
  process.stderr.write('usage: read-many.ts <allowlist> <count>\n');
  process.exit(2);
}

const report = { reads: 0, invalid: 0, foreignLost: 0, appCounts: new Set<number>(), firstError: '' };
for (let i = 0; i < Number(countText); i++) {
  const text = readFileSync(path, 'utf8');
  report.reads++;
  try {
    const parsed = JSON.parse(text) as { apps: object; 'x-operator'?: { note?: string } };
    if (parsed['x-operator']?.note !== 'keep me') report.foreignLost++;
    report.appCounts.add(Object.keys(parsed.apps).length);
  } catch (err) {
    report.invalid++;
    report.firstError ||= String(err);
  }
}
process.stdout.write(`${JSON.stringify({ ...report, appCounts: report.appCounts.size })}\n`);
