// Loads the hand-written prpc schemas in proto/ (see the header of proto/vmm_rpc.proto for the
// upstream commit they mirror).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { SupervisorError } from '../errors.ts';

const PROTO_FILES = ['vmm_rpc.proto', 'prpc.proto'] as const;

let cachedRoot: protobuf.Root | undefined;

// Walk up from `fromUrl` to the first directory holding proto/vmm_rpc.proto. One rule covers the
// source tree (src/vmm/), a bundle in dist/ and the installed /usr/lib/dstack-supervisor/x.mjs.
export function findProtoDir(fromUrl: string = import.meta.url): string {
  let dir = dirname(fileURLToPath(fromUrl));
  for (;;) {
    const candidate = join(dir, 'proto');
    if (existsSync(join(candidate, PROTO_FILES[0]))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) {
      throw new SupervisorError(
        'VMM_PROTO_MISSING',
        `proto/${PROTO_FILES[0]} was not found in any parent of ${fileURLToPath(fromUrl)}; ` +
          'reinstall dstack-supervisor (the proto/ directory ships beside the program)',
      );
    }
    dir = parent;
  }
}

// Parse the .proto files once per process. keepCase keeps upstream's snake_case field names, which
// are also the JSON wire names, so one object shape serves both encodings.
export function loadVmmRoot(): protobuf.Root {
  if (cachedRoot === undefined) {
    const dir = findProtoDir();
    const root = new protobuf.Root();
    root.loadSync(
      PROTO_FILES.map((file) => join(dir, file)),
      { keepCase: true },
    );
    root.resolveAll();
    cachedRoot = root;
  }
  return cachedRoot;
}
