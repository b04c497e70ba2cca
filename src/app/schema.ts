// The shape of a compose file as far as the supervisor relies on it. Liberal on purpose: compose
// has many keys and grows more, and the CVM's own docker compose is the judge of those; we check
// only what we read (services, their ports and profiles) and leave the rest as it is.
import * as z from 'zod';
import { AppError } from './errors.ts';
import { errorAt } from './source.ts';
import type { Source } from './source.ts';

// compose-spec.json's patternProperties for `services`: docker compose refuses any other name, and
// `../x` or a control character has no business in a container name, a log line or a path.
const SERVICE_NAME = /^[a-zA-Z0-9._-]+$/;

// Long-syntax port: `target` is required by compose, the rest is optional.
const LongPortSchema = z.looseObject({
  target: z.union([z.number(), z.string()], { error: 'a long-syntax port needs `target:` (the container port)' }),
  published: z.union([z.number(), z.string()]).optional(),
  host_ip: z.string().optional(),
  protocol: z.string().optional(),
});

const PortEntrySchema = z.union([z.string(), z.number(), LongPortSchema], {
  error: 'a port is "HOST:CONTAINER", a number, or a mapping with `target:`',
});

// One entry of a service's `ports:` list.
export type PortEntry = z.infer<typeof PortEntrySchema>;

const ServiceSchema = z.looseObject(
  {
    ports: z.array(PortEntrySchema, { error: 'must be a list' }).nullish(),
    profiles: z.array(z.string(), { error: 'must be a list of profile names' }).optional(),
  },
  { error: 'a service must be a mapping (image:, ports:, ...)' },
);

// A service definition; keys we do not read stay in it untyped.
export type ComposeService = z.infer<typeof ServiceSchema>;

const ComposeSchema = z.looseObject(
  {
    services: z
      .record(z.string(), ServiceSchema, { error: 'must be a mapping of service names to definitions' })
      .refine((services) => Object.keys(services).length > 0, { error: 'is empty; define at least one service' }),
  },
  { error: 'the top level must be a mapping with a `services:` key' },
);

// A compose file that passed the checks above.
export type Compose = z.infer<typeof ComposeSchema>;

// Check the parsed data; throws AppError APP_SCHEMA at the first offending node.
export function validateCompose(source: Source, data: unknown): Compose {
  const result = ComposeSchema.safeParse(data);
  if (result.success) {
    checkServiceNames(source, Object.keys(result.data.services));
    return result.data;
  }
  const issue = result.error.issues[0];
  const path = (issue?.path ?? []).filter((step) => typeof step !== 'symbol');
  // A missing `services:` fails as a wrong type; say "missing" instead.
  const missing = path.join('.') === 'services' && typeof data === 'object' && data !== null && !('services' in data);
  const problem = missing ? 'is missing; add a `services:` mapping with at least one service' : (issue?.message ?? 'is invalid');
  throw errorAt(source, 'APP_SCHEMA', path, `${problem}; see https://docs.docker.com/reference/compose-file/`);
}

// Throw APP_SCHEMA at the first service name compose would refuse, shown escaped and cut short.
function checkServiceNames(source: Source, names: readonly string[]): void {
  const bad = names.find((name) => !SERVICE_NAME.test(name));
  if (bad === undefined) return;
  const shown = JSON.stringify(bad.length > 64 ? `${bad.slice(0, 64)}…` : bad);
  const problem =
    `service name ${shown} is not one docker compose accepts; rename the service with letters, digits, ".", "_" and "-" only ` +
    `(compose-spec ${SERVICE_NAME.source})`;
  throw new AppError('APP_SCHEMA', source.file, problem, source.locate(['services', bad]));
}
