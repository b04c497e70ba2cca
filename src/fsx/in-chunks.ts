// File-system work over many files, a bounded number at a time: a look at a file may hold a
// descriptor while it reads, and thousands at once would run out of them (EMFILE).
const AT_ONCE = 64;

// Run `fn` on every item, AT_ONCE at a time.
export async function inChunks<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += AT_ONCE) await Promise.all(items.slice(i, i + AT_ONCE).map(fn));
}
