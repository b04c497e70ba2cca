// Placeholder until the hash command lands; exits non-zero so nothing mistakes it for success.
export async function run(_args: string[]): Promise<number> {
  process.stderr.write('dstack-supervisor hash: not implemented yet\n');
  return 1;
}
