// The init journal, `<state_dir>/init.json`: which steps finished and what they settled on (the
// image pin, the KMS port, the KMS VM id ...). A re-run reads it to know what to verify; a step
// whose result did not change is not re-recorded, so a healthy re-run writes nothing.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as z from 'zod';
import { writeFileAtomic } from '../fsx/atomic.ts';
import { journalError } from './errors.ts';
import { readFileIfExists } from './files.ts';
import { canonical } from './merge.ts';

// The init steps in the order they run.
export const INIT_STEPS = ['preflight', 'image', 'render', 'tls', 'units', 'kms'] as const;

// One init step.
export type InitStep = (typeof INIT_STEPS)[number];

const DetailSchema = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]));

// What a step settled on: flat scalar facts, compared whole to decide whether to re-record.
export type StepDetail = z.infer<typeof DetailSchema>;

const StepRecordSchema = z.object({ finished_at: z.string(), detail: DetailSchema });

// The file: a version for future migrations and one record per finished step.
export const InitJournalSchema = z.object({
  version: z.literal(1),
  steps: z.partialRecord(z.enum(INIT_STEPS), StepRecordSchema),
});

// A parsed init.json.
export type InitJournal = z.infer<typeof InitJournalSchema>;

// Where the journal lives.
export function initJournalPath(stateDir: string): string {
  return join(stateDir, 'init.json');
}

// The journal, or an empty one when init never ran here.
export async function readInitJournal(stateDir: string): Promise<InitJournal> {
  const path = initJournalPath(stateDir);
  let text: string | undefined;
  try {
    text = await readFileIfExists(path);
  } catch (err) {
    throw journalError(path, 'cannot read it', err);
  }
  if (text === undefined) return { version: 1, steps: {} };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw journalError(path, 'is not valid JSON; move it away and init re-checks every step', err);
  }
  const parsed = InitJournalSchema.safeParse(raw);
  if (!parsed.success) throw journalError(path, `is not an init journal (${parsed.error.issues[0]?.message ?? 'bad shape'}); move it away and init re-checks every step`);
  return parsed.data;
}

// Record that `step` finished with `detail`; returns false (and writes nothing) when the journal
// already says exactly that.
export async function recordInitStep(stateDir: string, step: InitStep, detail: StepDetail, now: () => number): Promise<boolean> {
  const journal = await readInitJournal(stateDir);
  const previous = journal.steps[step];
  if (previous !== undefined && canonical(previous.detail) === canonical(detail)) return false;
  journal.steps[step] = { finished_at: new Date(now()).toISOString(), detail };
  const path = initJournalPath(stateDir);
  try {
    await mkdir(stateDir, { recursive: true });
    await writeFileAtomic(path, `${JSON.stringify(journal, null, 2)}\n`, { mode: 0o644 });
  } catch (err) {
    throw journalError(path, 'cannot write it', err);
  }
  return true;
}
