// The V8/Node flags dstack-supervisor runs with, kept in one file (packaging/files/node-flags)
// that the package's launcher, the npm bin and the benchmarks all read.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

// Where the flags live in the source tree; the package installs the file as
// /usr/lib/dstack-supervisor/node-flags, beside the program.
export const NODE_FLAGS_FILE = join(import.meta.dirname, '..', 'packaging', 'files', 'node-flags');

// The flags in `path`: one per line, blank lines and '#' comment lines skipped, the same rule as
// the launcher's `while read` loop.
export function readNodeFlags(path: string = NODE_FLAGS_FILE): string[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}
