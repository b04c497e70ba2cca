// File-system work over many files, a bounded number at a time: a look at a file may hold a
// descriptor while it reads, and thousands at once would run out of them (EMFILE).
const AT_ONCE = 64;

// What a reader in the background awaits before each chunk, so that work which must not wait
// behind it runs first.
export type Pace = () => Promise<void>;

// Run `fn` on every item, AT_ONCE at a time, each chunk after `pace`.
export async function inChunks<T>(items: readonly T[], fn: (item: T) => Promise<void>, pace?: Pace): Promise<void> {
  for (let i = 0; i < items.length; i += AT_ONCE) {
    await pace?.();
    await Promise.all(items.slice(i, i + AT_ONCE).map(fn));
  }
}
