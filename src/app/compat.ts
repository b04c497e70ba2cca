// The compatibility pass (issue 8): what in a compose file written for a laptop a CVM cannot
// honour. A CVM has no build context, no files beside the compose file and no shell environment;
// it has the images it can pull, named volumes on its encrypted disk, and NAME.env. Refusals stop
// the deploy (the app would not start, or start wrong); warnings deploy and are shown.
import { findHostFiles } from './compat-files.ts';
import { findReferences } from './interpolation.ts';
import type { Compose, ComposeService } from './schema.ts';
import type { DataPath } from './source.ts';
import type { AppWarning } from './warning.ts';

// A finding with the YAML path it is about, so a refusal can point at its line.
export type Finding = AppWarning & { path: DataPath };

// Everything the pass found, in file order.
export type CompatReport = { refusals: Finding[]; warnings: Finding[] };

// What the pass needs besides the file: the app name (for "NAME.env") and the env keys it has.
export type CompatContext = { app: string; envKeys: ReadonlySet<string> };

// Check a validated compose file.
export function checkCompatibility(compose: Compose, context: CompatContext): CompatReport {
  const report: CompatReport = { refusals: [], warnings: [] };
  const envFile = `${context.app}.env`;
  if (compose['include'] !== undefined) {
    report.refusals.push({
      service: '',
      key: 'include',
      path: ['include'],
      message: '`include:` pulls in other compose files, which are not in the CVM; paste their services into this file',
    });
  }
  const imageless = new Map<string, boolean>();
  for (const [service, spec] of Object.entries(compose.services)) {
    if (spec.profiles && spec.profiles.length > 0) {
      report.warnings.push({
        service,
        key: 'profiles',
        path: ['services', service, 'profiles'],
        message:
          `is in profile ${spec.profiles.join(', ')}, and no profile is active in the CVM: it does not start and its ports ` +
          'are not mapped; remove `profiles:` to run it',
      });
      continue;
    }
    checkService(service, spec, envFile, report);
    if (lacksImage(compose.services, service, imageless)) {
      // compose-go's checkConsistency rejects the whole project ("service %q has neither an image
      // nor a build context specified") once profiles are applied, so only active services count.
      // A service with `build:` and no image gets the `build:` refusal above instead.
      report.refusals.push({
        service,
        key: 'image',
        path: ['services', service, 'image'],
        message:
          `is ${spec['image'] === '' ? 'empty' : 'missing'} and there is no \`build:\`, so docker compose in the CVM rejects ` +
          `the whole file (service "${service}" has neither an image nor a build context specified); add ` +
          '`image: <registry>/<name>:<tag>` with the image this service runs',
      });
    }
  }
  report.warnings.push(...findHostFiles(compose, envFile));
  checkInterpolation(compose, context, envFile, report);
  return report;
}

function checkService(service: string, spec: ComposeService, envFile: string, report: CompatReport): void {
  const path = (key: string): DataPath => ['services', service, key];
  if (spec['build'] !== undefined) {
    const image = spec['image'];
    if (typeof image !== 'string' || image === '') {
      report.refusals.push({
        service,
        key: 'build',
        path: path('build'),
        message:
          'has `build:` but no `image:`; a CVM cannot build (the build context is not there), it pulls images: build and push ' +
          'the image to a registry, then replace `build:` with `image: <registry>/<name>:<tag>`',
      });
    } else {
      report.warnings.push({
        service,
        key: 'build',
        path: path('build'),
        message:
          `\`build:\` cannot run in the CVM (the build context is not there); make sure ${image} is pushed to a registry ` +
          'the CVM can pull from, and drop `build:`',
      });
    }
  }
  const extendsFile = extendedFile(spec['extends']);
  if (extendsFile !== undefined) {
    report.refusals.push({
      service,
      key: 'extends',
      path: path('extends'),
      message: `\`extends:\` reads ${extendsFile}, which is not in the CVM; copy the keys it inherits into this service`,
    });
  }
  if (spec['network_mode'] === 'host') {
    report.warnings.push({
      service,
      key: 'network_mode',
      path: path('network_mode'),
      message:
        'uses the CVM\'s network directly, so compose drops its `ports:` and the supervisor maps none for it; list the ports ' +
        `it listens on in x-dstack.ports (e.g. "8080:8080"), or remove \`network_mode: host\``,
    });
  }
  const runtime = spec['runtime'];
  if (typeof runtime === 'string' && runtime !== 'runc') {
    report.warnings.push({
      service,
      key: 'runtime',
      path: path('runtime'),
      message:
        `asks for container runtime ${runtime}, which the CVM's docker does not have unless the guest image ships it; ` +
        'the container will fail to start otherwise',
    });
  }
  if (spec['env_file'] !== undefined) {
    report.warnings.push({
      service,
      key: 'env_file',
      path: path('env_file'),
      message:
        `\`env_file:\` is read from the host, which the CVM cannot see; put the variables in ${envFile} and pass them ` +
        'with `environment:` (e.g. `API_KEY: ${API_KEY}`)',
    });
  }
}

// True when neither the service nor what it `extends:` in this file has `image:` or `build:`.
// `extends:` of another file is refused on its own, and a missing base service or a cycle is
// docker compose's to report, so both count as "has one".
function lacksImage(services: Compose['services'], service: string, answers: Map<string, boolean>): boolean {
  // Every service met on the way shares the answer of the chain's end, so each is walked once
  // (`extends:` chains of 3 300 services took 0.9 s walked from each service; issue 13).
  const seen = new Set<string>();
  let lacks = true;
  for (let name: string | undefined = service; name !== undefined; name = extendedService(services[name]?.['extends'])) {
    const spec = services[name];
    const answer = answers.get(name);
    if (answer !== undefined) {
      lacks = answer;
      break;
    }
    if (spec === undefined || seen.has(name) || extendedFile(spec['extends']) !== undefined || hasImageOrBuild(spec)) {
      lacks = false;
      break;
    }
    seen.add(name);
  }
  for (const name of seen) answers.set(name, lacks);
  return lacks;
}

function hasImageOrBuild(spec: ComposeService): boolean {
  const image = spec['image'];
  return spec['build'] !== undefined || (image !== undefined && image !== null && image !== '');
}

// The base service of `extends: y` or `extends: {service: y}`.
function extendedService(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value !== 'object' || value === null || !('service' in value)) return undefined;
  return String(value.service);
}

// `extends: {file: x, service: y}` reads another file; `extends: y` or without `file` stays here.
function extendedFile(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || !('file' in value)) return undefined;
  return String(value.file);
}

// `${VAR}` that NAME.env does not provide: compose substitutes "" (warn) or aborts on `:?` (refuse).
function checkInterpolation(compose: Compose, context: CompatContext, envFile: string, report: CompatReport): void {
  const missing = new Map<string, { service: string; key: string; names: Set<string> }>();
  for (const { service, key, text } of stringsOf(compose)) {
    for (const ref of findReferences(text)) {
      if (context.envKeys.has(ref.name) || ref.kind === 'fallback') continue;
      if (ref.kind === 'required') {
        report.refusals.push({
          service,
          key,
          path: service === '' ? [key] : ['services', service, key],
          message:
            `\${${ref.name}} is required (${JSON.stringify(ref.message)}) and ${envFile} does not set it; ` +
            `add ${ref.name}=... to ${envFile}`,
        });
        continue;
      }
      const group = missing.get(`${service}\0${key}`) ?? { service, key, names: new Set<string>() };
      group.names.add(ref.name);
      missing.set(`${service}\0${key}`, group);
    }
  }
  for (const { service, key, names } of missing.values()) {
    const list = [...names].sort();
    report.warnings.push({
      service,
      key,
      path: service === '' ? [key] : ['services', service, key],
      message:
        `uses ${list.map((n) => `\${${n}}`).join(', ')}, which ${envFile} does not set, ` +
        'so compose substitutes an empty string; ' +
        `add ${list.length === 1 ? 'it' : 'them'} to ${envFile}`,
    });
  }
}

// Every string value compose interpolates, with the service and top key it sits under. Top-level
// `x-*` keys are skipped: what services take from them arrives merged into the services.
function* stringsOf(compose: Compose): Generator<{ service: string; key: string; text: string }> {
  for (const [key, value] of Object.entries(compose)) {
    if (key.startsWith('x-')) continue;
    if (key !== 'services') {
      for (const text of leaves(value)) yield { service: '', key, text };
      continue;
    }
    for (const [service, spec] of Object.entries(compose.services)) {
      if (spec.profiles && spec.profiles.length > 0) continue;
      for (const [field, inner] of Object.entries(spec)) {
        for (const text of leaves(inner)) yield { service, key: field, text };
      }
    }
  }
}

function* leaves(value: unknown): Generator<string> {
  if (typeof value === 'string') yield value;
  else if (Array.isArray(value)) for (const item of value) yield* leaves(item);
  else if (typeof value === 'object' && value !== null) for (const item of Object.values(value)) yield* leaves(item);
}
