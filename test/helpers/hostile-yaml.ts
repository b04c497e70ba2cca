// Compose files that are valid YAML and valid compose, yet cost the parser far more than their
// size suggests (issue 13): what the parse limits must refuse quickly. Shared by the unit, CLI,
// hostile-corpus and end-to-end tests and by bench/parse.ts.

const HEAD = 'services:\n  web:\n    image: nginx:1.27\n';

// `keys` keys under `x-junk` (50 000 make the 575 KiB file): yaml's duplicate-key check
// compares each key with every earlier one.
export function manyKeysYaml(keys: number): string {
  const lines = Array.from({ length: keys }, (_, i) => `  k${String(i).padStart(5, '0')}: 1\n`);
  return `${HEAD}x-junk:\n${lines.join('')}`;
}

// One anchored mapping of `keys` keys merged into `merges` mappings: under yaml's alias-count
// limit (100) when `merges` < 100, yet `keys × merges` nodes once written out.
export function mergeAmplifiedYaml(keys: number, merges: number): string {
  const anchored = Array.from({ length: keys }, (_, i) => `  k${i}: v\n`);
  const uses = Array.from({ length: merges }, (_, i) => `  u${i}: {<<: *big}\n`);
  return `x-big: &big\n${anchored.join('')}${HEAD}x-use:\n${uses.join('')}`;
}
