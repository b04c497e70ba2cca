import assert from 'node:assert/strict';
import { AppError } from '../../src/app/errors.ts';
import type { HostPortPolicy } from '../../src/app/host-ports.ts';
import { buildAppSpec } from '../../src/app/spec.ts';
import type { AppSpec } from '../../src/app/spec.ts';

// Defaults for table tests; port address differs from 127.0.0.1 so defaulting is visible.
export const TEST_DEFAULTS = { image: 'dstack-0.5.11', vcpu: 2, memory: 2048, disk: 20, portAddress: '10.9.8.7' };

// Build a spec for `text` as app "web" from apps.d/web.yaml; `hostPorts` absent is the shipped
// default (no port below 1024, none reserved).
export function specOf(text: string, envKeys: string[] = [], hostPorts?: HostPortPolicy): AppSpec {
  return buildAppSpec({ name: 'web', file: 'apps.d/web.yaml', text, envKeys, defaults: TEST_DEFAULTS, hostPorts });
}

// "proto address:host>vm" for each mapping, for compact table rows.
export function portsOf(spec: AppSpec): string[] {
  return spec.ports.map((p) => `${p.protocol} ${p.host_address}:${p.host_port}>${p.vm_port}`);
}

// Assert building `text` fails with `code`, and return the error for message checks.
export function failureOf(text: string, code: string, envKeys: string[] = [], hostPorts?: HostPortPolicy): AppError {
  try {
    specOf(text, envKeys, hostPorts);
  } catch (err) {
    assert.ok(err instanceof AppError, `expected AppError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.ok(err.message.startsWith('apps.d/web.yaml'), err.message);
    return err;
  }
  assert.fail(`expected ${code}, but the file was accepted`);
}

// docs/dstack.md §3 / dstack-cli-core compose.rs, in upstream's order; `allowed_envs` follows only
// when the app has env names (MANIFEST_FIELDS_WITH_ENVS).
export const MANIFEST_FIELDS = [
  'manifest_version',
  'name',
  'runner',
  'docker_compose_file',
  'kms_enabled',
  'gateway_enabled',
  'local_key_provider_enabled',
  'public_logs',
  'public_sysinfo',
  'no_instance_id',
  'secure_time',
];
export const MANIFEST_FIELDS_WITH_ENVS = [...MANIFEST_FIELDS, 'allowed_envs'];
