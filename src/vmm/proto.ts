// Loads the hand-written prpc schemas in proto/ (see the header of proto/vmm_rpc.proto for the
// upstream commit they mirror).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { SupervisorError } from '../errors.ts';

const PROTO_FILES = ['vmm_rpc.proto', 'prpc.proto'] as const;

let cachedRoot: protobuf.Root | undefined;

// Walk up from `fromUrl` to the first directory holding proto/vmm_rpc.proto. One rule covers the
// source tree (src/vmm/), a bundle chunk in dist/chunks/ and the installed
// /usr/lib/dstack-supervisor/chunks/x.mjs.
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
// are also the JSON wire names, so one object shape serves both encodings. The files are read with
// node:fs rather than Root.loadSync, whose `require("fs")` lookup fails inside an ESM bundle.
export function loadVmmRoot(): protobuf.Root {
  if (cachedRoot === undefined) {
    const dir = findProtoDir();
    const root = new protobuf.Root();
    const imports = new Set<string>();
    for (const file of PROTO_FILES) {
      const parsed = protobuf.parse(readFileSync(join(dir, file), 'utf8'), root, { keepCase: true });
      for (const name of parsed.imports ?? []) imports.add(name);
    }
    // Only well-known types (google/protobuf/empty.proto) are imported; protobufjs bundles them.
    for (const name of imports) {
      const common = protobuf.common.get(name);
      if (common?.nested === undefined) {
        throw new SupervisorError('VMM_PROTO_MISSING', `${join(dir, PROTO_FILES[0])} imports ${name}, which is not a bundled well-known type`);
      }
      root.addJSON(common.nested);
    }
    root.resolveAll();
    cachedRoot = root;
  }
  return cachedRoot;
}
