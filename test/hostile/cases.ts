// The hostile-input corpus (test/fixtures/hostile/cases.json): what each case is, and how to put
// it into an apps.d for real (bytes, symlink, directory, FIFO, mode, owner, name).
import { chmod, chown, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { z } from 'zod';
import { manyKeysYaml, mergeAmplifiedYaml } from '../helpers/hostile-yaml.ts';

const FIXTURES = join(import.meta.dirname, '../fixtures/hostile');

// The text every case that is not about content uses, and the head of generated files.
const VALID_HEAD = 'services:\n  web:\n    image: nginx:1.27\n';

const CaseSchema = z
  .object({
    id: z.string().regex(/^[a-z0-9-]+$/),
    // A file in the fixture directory holding the bytes to drop; `{{KEEP_PORT}}` is filled in.
    content: z.string().optional(),
    // Bytes made at run time (too big or too repetitive to keep in git).
    generate: z
      .discriminatedUnion('kind', [
        z.object({ kind: z.literal('deep-flow'), depth: z.number().int().positive() }),
        z.object({ kind: z.literal('deep-block'), depth: z.number().int().positive() }),
        z.object({ kind: z.literal('padded'), bytes: z.number().int().positive() }),
        z.object({ kind: z.literal('many-keys'), keys: z.number().int().positive() }),
        z.object({ kind: z.literal('merge-amplified'), keys: z.number().int().positive(), merges: z.number().int().positive() }),
      ])
      .optional(),
    // The name to drop it as (default `h-<id>.yml`).
    name: z.string().optional(),
    setup: z
      .object({
        mode: z.string().regex(/^[0-7]{3,4}$/).optional(),
        uid: z.number().int().optional(),
        // Drop a symlink to this target instead of a file.
        symlink: z.string().optional(),
        // Make this directory inside apps.d first (the drop itself when it has the drop's name).
        dir: z.string().optional(),
        fifo: z.boolean().optional(),
      })
      .strict()
      .optional(),
    // `code`: the SupervisorError code the scanner or the spec builder gives; misnamed files get
    // none (their code is `misnamed`), and a port clash is the planner's (`port-conflict`).
    // `action`: the journal's ACTION for it; `phrase`: words its message must contain.
    expect: z.object({ code: z.string(), action: z.enum(['invalid', 'refused', 'conflict']), phrase: z.string() }).strict(),
  })
  .strict();

// One hostile input.
export type HostileCase = z.infer<typeof CaseSchema>;

// Every case of the corpus.
export async function loadCases(): Promise<HostileCase[]> {
  const raw = JSON.parse(await readFile(join(FIXTURES, 'cases.json'), 'utf8')) as { cases: unknown[] };
  return raw.cases.map((c) => CaseSchema.parse(c));
}

// The file name a case is dropped as.
export function dropName(c: HostileCase): string {
  return c.name ?? `h-${c.id}.yml`;
}

// The app identity a case claims, when its name is a valid one.
export function identityOf(c: HostileCase): string | undefined {
  return /^([a-z0-9][a-z0-9-]{0,62})\.ya?ml$/.exec(dropName(c))?.[1];
}

async function bytesOf(c: HostileCase, keepPort: number): Promise<Buffer | undefined> {
  if (c.content !== undefined) {
    const bytes = await readFile(join(FIXTURES, c.content));
    // Only text fixtures carry the placeholder; binary ones go through untouched.
    return bytes.includes('{{KEEP_PORT}}') ? Buffer.from(bytes.toString('utf8').replaceAll('{{KEEP_PORT}}', String(keepPort))) : bytes;
  }
  const g = c.generate;
  if (!g) return undefined;
  switch (g.kind) {
    case 'deep-flow':
      return Buffer.from(`${VALID_HEAD}    labels: ${'['.repeat(g.depth)}${']'.repeat(g.depth)}\n`);
    case 'deep-block':
      // Compact nested sequences (`- - - a`): block nesting in two bytes a level.
      return Buffer.from(`${VALID_HEAD}x-deep:\n${'- '.repeat(g.depth)}a\n`);
    case 'padded':
      return Buffer.from(`${VALID_HEAD}# ${'x'.repeat(g.bytes - VALID_HEAD.length - 3)}\n`);
    case 'many-keys':
      return Buffer.from(manyKeysYaml(g.keys));
    case 'merge-amplified':
      return Buffer.from(mergeAmplifiedYaml(g.keys, g.merges));
  }
}

// Put case `c` into `appsDir` (the running app "keep" publishes `keepPort`).
export async function materialize(c: HostileCase, appsDir: string, keepPort: number): Promise<void> {
  const path = join(appsDir, dropName(c));
  const setup = c.setup ?? {};
  if (setup.dir !== undefined) await mkdir(join(appsDir, setup.dir), { recursive: true });
  if (setup.symlink !== undefined) return symlink(setup.symlink, path);
  if (setup.fifo) return void (await execa('mkfifo', ['-m', '0644', path]));
  const bytes = await bytesOf(c, keepPort);
  if (bytes === undefined) return;
  await writeFile(path, bytes, { mode: 0o644 });
  if (setup.mode !== undefined) await chmod(path, Number.parseInt(setup.mode, 8));
  if (setup.uid !== undefined) await chown(path, setup.uid, setup.uid);
}
