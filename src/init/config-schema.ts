import { z } from 'zod';

// The `[init]` section of supervisor.toml: how the first start initialises the host.
export const InitSectionSchema = z
  .object({
    // false = the host is already initialised; `run` skips straight to watching apps.d.
    enabled: z.boolean().default(true),
    // Root that every hardware and binary probe reads from, so tests can hand in a fake host.
    sysroot: z.string().default('/'),
  })
  .strict();

export type InitSection = z.infer<typeof InitSectionSchema>;
