// The two files of gateway.d are held to the rules of apps.d (docs/apps-dir.md): gateway.toml
// like a compose file, since it decides which file is read as the DNS provider token and sent
// into the gateway CVM; the token file like NAME.env, since its bytes are the secret. Both are
// opened without following a symlink and checked on the open descriptor (src/fsx/guarded-read.ts),
// so what is checked is what is read.
import type { BigIntStats } from 'node:fs';
import { describeFileType, openNoFollow, ownerName, readAtMost, type GuardedOpen } from '../fsx/guarded-read.ts';
import { isHardLinked } from '../fsx/hard-link.ts';
import type { GatewayConfigErrorCode, Refusal } from './errors.ts';

// `config`: others may read it but not change it; `secret`: only its owner may read it.
export type FileKind = 'config' | 'secret';

// What opening found: nothing there, a refusal, or the checked file's bytes (at most the limit).
export type GuardedRead = { kind: 'missing' } | { kind: 'refused'; refusal: Refusal } | { kind: 'read'; bytes: Buffer };

const SECRET_MODES = new Set([0o600, 0o400]);

const TOO_LARGE_FIX: Record<FileKind, string> = {
  config: 'check that it is the right file (a gateway.toml is a dozen lines)',
  secret: 'it must hold only the token',
};

const CODES: Record<FileKind, { unsafe: GatewayConfigErrorCode; unreadable: GatewayConfigErrorCode; invalid: GatewayConfigErrorCode }> = {
  config: { unsafe: 'GATEWAY_CONFIG_UNSAFE', unreadable: 'GATEWAY_CONFIG_UNREADABLE', invalid: 'GATEWAY_CONFIG_INVALID' },
  secret: { unsafe: 'GATEWAY_TOKEN_UNSAFE', unreadable: 'GATEWAY_TOKEN_UNREADABLE', invalid: 'GATEWAY_TOKEN_INVALID' },
};

function errno(err: unknown): string {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : 'unknown error';
}

// The first rule `st` breaks, as "<problem>; <fix>", or null.
function statProblem(path: string, st: BigIntStats, kind: FileKind, owner: number): string | null {
  if (!st.isFile()) return `is ${describeFileType(st)}; replace it with a regular file`;
  if (isHardLinked(st)) {
    return `has ${st.nlink} names (it is hard-linked), so it may be a file from elsewhere on the host; copy it instead: run cp ${path} ${path}.tmp && mv ${path}.tmp ${path}`;
  }
  if (st.uid !== BigInt(owner)) return `is owned by uid ${st.uid}, not by ${ownerName(owner)} (uid ${owner}); run: chown ${ownerName(owner)} ${path}`;
  const mode = Number(st.mode & 0o7777n);
  const shown = mode.toString(8).padStart(4, '0');
  if (kind === 'config' && (mode & 0o022) !== 0) return `is group- or world-writable (mode ${shown}), so others could change the gateway's settings; run: chmod go-w ${path}`;
  if (kind === 'secret' && !SECRET_MODES.has(mode)) return `has mode ${shown}, but a token file must be mode 0600 or 0400 so only its owner can read it; run: chmod 600 ${path}`;
  return null;
}

// Open `path`, check it as a `kind` file of `owner`, and read at most `limit` bytes.
export async function readGuarded(path: string, kind: FileKind, owner: number, limit: number): Promise<GuardedRead> {
  const codes = CODES[kind];
  const unreadable = (err: unknown): GuardedRead => ({
    kind: 'refused',
    refusal: { code: codes.unreadable, text: `cannot be read (${errno(err)}); check the file and its directory` },
  });
  let opened: GuardedOpen;
  try {
    opened = await openNoFollow(path);
  } catch (err) {
    return unreadable(err);
  }
  if (opened.kind === 'missing') return opened;
  if (opened.kind === 'symlink') {
    const text = `is a symlink, but it must be a regular file in its own right; replace the link with a copy of its target: run cp --remove-destination "$(readlink -f ${path})" ${path}`;
    return { kind: 'refused', refusal: { code: codes.unsafe, text } };
  }
  const { handle } = opened;
  try {
    const problem = statProblem(path, opened.st, kind, owner);
    if (problem !== null) return { kind: 'refused', refusal: { code: codes.unsafe, text: problem } };
    const bytes = await readAtMost(handle, limit);
    if (bytes === null) return { kind: 'refused', refusal: { code: codes.invalid, text: `is larger than ${limit} bytes; ${TOO_LARGE_FIX[kind]}` } };
    return { kind: 'read', bytes };
  } catch (err) {
    return unreadable(err);
  } finally {
    await handle.close();
  }
}
