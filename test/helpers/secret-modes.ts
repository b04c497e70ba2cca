// [what, mode]: the modes a secrets file (NAME.env, the gateway's DNS token) is refused with;
// only 0600 and 0400 let no one but its owner read it.
export const BAD_SECRET_MODES: ReadonlyArray<readonly [string, number]> = [
  ['world-readable', 0o644],
  ['group-readable', 0o640],
  ['group-writable', 0o620],
  ['executable', 0o700],
  ['setuid', 0o4600],
  ['write-only', 0o200],
];
