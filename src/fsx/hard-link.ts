// Files in apps.d with more than one name (issue 13 item 6). A hard link is the same inode under
// another name, possibly outside apps.d (a root-only file elsewhere), and nothing short of
// searching every file system says where the other names are; so any regular file with
// st_nlink > 1 is refused, as a symlink that leaves the directory is. `ln`, `cp -l` and
// `rsync --link-dest` make such files; cp, install, editors and config-management tools write a
// new inode (nlink 1). dpkg's passing `.dpkg-tmp` link is gone before the file settles.

// True when a regular file's link count says it has another name somewhere.
export function isHardLinked(st: { nlink: bigint | number }): boolean {
  return BigInt(st.nlink) > 1n;
}

// The refusal text: the file, how many names it has, and how to replace it with a copy.
export function describeHardLink(path: string, nlink: bigint | number): string {
  return (
    `${path}: has ${nlink} names (it is hard-linked), so it may be a file from outside the apps directory; ` +
    `copy the file instead of hard-linking it: run cp ${path} ${path}.tmp && mv ${path}.tmp ${path}`
  );
}
