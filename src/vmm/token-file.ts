// The dstack-vmm bearer token file ([vmm] token_file), held to sshd StrictModes' standard for a
// key (issue 13 item 6): opened without following a symlink and without blocking (a FIFO must not
// hang every call), then checked on the open descriptor: a regular file, owned by the
// supervisor's own user, no group or world access, and small enough to be one token.
import type { BigIntStats } from 'node:fs';
import { describeFileType, openNoFollow, readAtMost, type GuardedOpen } from '../fsx/guarded-read.ts';
import { tokenFileError, unsafeTokenFileError, type VmmError } from './errors.ts';

// A token is one line of vmm.toml [auth].tokens; anything larger is not a token file.
export const TOKEN_FILE_MAX_BYTES = 4096;

// The first rule `st` breaks, or null.
function checkStat(method: string, path: string, st: BigIntStats, owner: number): VmmError | null {
  if (!st.isFile()) return unsafeTokenFileError(method, path, `is ${describeFileType(st)}`, `put the token in a regular file (rm ${path}; install -m 600 /dev/null ${path}; then write the token into it)`);
  if (st.uid !== BigInt(owner)) return unsafeTokenFileError(method, path, `is owned by uid ${st.uid}, not by the supervisor's uid ${owner}`, `run: chown ${owner} ${path}`);
  const mode = Number(st.mode & 0o7777n);
  if ((mode & 0o077) !== 0) return unsafeTokenFileError(method, path, `has mode ${mode.toString(8).padStart(4, '0')}, so others can read or change the token`, `run: chmod 600 ${path}`);
  if (st.size > BigInt(TOKEN_FILE_MAX_BYTES)) return tooLarge(method, path);
  return null;
}

function tooLarge(method: string, path: string): VmmError {
  return tokenFileError(method, path, `it is over ${TOKEN_FILE_MAX_BYTES} bytes, but a token file holds one token`);
}

// The Authorization header for the token in `path`; none when the file does not exist (no token
// is sent, README Decisions) or is empty. `method` names the call in errors; `owner` is the uid
// the file must belong to. Throws VMM_TOKEN_UNSAFE or VMM_TOKEN_FILE; no message holds the token.
export async function tokenHeaders(method: string, path: string, owner = process.getuid?.() ?? 0): Promise<Record<string, string>> {
  let opened: GuardedOpen;
  try {
    opened = await openNoFollow(path);
  } catch (err) {
    throw tokenFileError(method, path, err);
  }
  if (opened.kind === 'missing') return {};
  if (opened.kind === 'symlink') {
    throw unsafeTokenFileError(method, path, 'is a symlink', `replace the link with a copy of its target: run cp --remove-destination "$(readlink -f ${path})" ${path}; chmod 600 ${path}`);
  }
  const { handle, st } = opened;
  let bytes: Buffer | null;
  try {
    const refusal = checkStat(method, path, st, owner);
    if (refusal !== null) throw refusal;
    bytes = await readAtMost(handle, TOKEN_FILE_MAX_BYTES).catch((err: unknown) => {
      throw tokenFileError(method, path, err);
    });
  } finally {
    await handle.close();
  }
  if (bytes === null) throw tooLarge(method, path);
  const token = bytes.toString('utf8').trim();
  return token === '' ? {} : { authorization: `Bearer ${token}` };
}
