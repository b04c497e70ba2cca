// Issue 19: a service that asks docker for an NVIDIA GPU while the file gives the CVM none
// (no `x-dstack.gpus`) is warned about, naming the key to add; checked on compose files of the
// shapes published for GPU services (test/fixtures/gpu-compose/README.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { reviewAppSpec } from '../../src/app/spec.ts';
import type { AppWarning } from '../../src/app/warning.ts';
import { TEST_DEFAULTS } from './helpers.ts';

const DIR = join(import.meta.dirname, '../fixtures/gpu-compose');
const GPU_KEYS = new Set(['deploy.resources.reservations.devices', 'gpus', 'x-dstack.gpus']);

function gpuWarnings(file: string, extra = ''): AppWarning[] {
  const text = readFileSync(join(DIR, file), 'utf8') + extra;
  const { spec } = reviewAppSpec({ name: 'app', file: `apps.d/${file}`, text, defaults: TEST_DEFAULTS, hostPorts: { privileged: [], reserved: [] } });
  return spec.warnings.filter((w) => GPU_KEYS.has(w.key));
}

const advice = (n: number) =>
  `asks docker for an NVIDIA GPU, but the CVM has none unless the file says how many: add \`x-dstack: {gpus: ${n}}\` ` +
  '(a number of free GPUs, `all`, or a list of PCI addresses); without it the container fails to start';
const DEVICES = 'deploy.resources.reservations.devices';

const CASES: [string, AppWarning[]][] = [
  ['ollama-open-webui.yaml', [{ service: 'ollama', key: DEVICES, message: advice(1) }]],
  ['ollama-interpolated.yaml', [{ service: 'ollama', key: DEVICES, message: advice(1) }]],
  ['vllm-signing-proxy.yaml', [{ service: 'vllm', key: DEVICES, message: advice(1) }]],
  ['vllm-tensor-parallel.yaml', [{ service: 'vllm', key: DEVICES, message: advice(4) }]],
  // One warning per service, on the first way it asks (`runtime: nvidia` has its own, compat.ts).
  ['cuda-notebook.yaml', [{ service: 'jupyter', key: DEVICES, message: advice(1) }]],
  ['comfyui-gpus-key.yaml', [{ service: 'comfyui', key: 'gpus', message: advice(1) }]],
];

for (const [file, expected] of CASES) {
  test(`${file}: the GPU ask without x-dstack.gpus is warned about, naming the key; with it, not`, () => {
    assert.deepEqual(gpuWarnings(file), expected);
    assert.deepEqual(gpuWarnings(file, 'x-dstack:\n  gpus: 1\n'), []);
  });
}

test('x-dstack.gpus with no service asking docker for a GPU: the CVM gets them, no container sees them', () => {
  assert.deepEqual(gpuWarnings('ollama-open-webui.yaml', 'x-dstack:\n  gpus: 1\n').length, 0);
  const text = 'services:\n  web:\n    image: nginx\nx-dstack:\n  gpus: 2\n';
  const { spec } = reviewAppSpec({ name: 'web', file: 'apps.d/web.yaml', text, defaults: TEST_DEFAULTS });
  assert.deepEqual(spec.warnings.map((w) => [w.service, w.key]), [['', 'x-dstack.gpus']]);
  assert.match(spec.warnings[0]!.message, /^gives the CVM GPUs, but no service asks docker for one, so no container sees them; add `deploy: \{resources/);
});

test('`runtime: nvidia` alone asks for a GPU too', () => {
  const text = 'services:\n  train:\n    image: trainer\n    runtime: nvidia\n    environment: [NVIDIA_VISIBLE_DEVICES=all]\n';
  const { spec } = reviewAppSpec({ name: 'web', file: 'apps.d/web.yaml', text, defaults: TEST_DEFAULTS });
  assert.deepEqual(spec.warnings.filter((w) => w.message === advice(1)).map((w) => [w.service, w.key]), [['train', 'runtime']]);
});

test('a service in a profile starts in no CVM, so its GPU ask is not warned about', () => {
  const text = 'services:\n  web:\n    image: nginx\n  train:\n    image: trainer\n    profiles: [gpu]\n    gpus: all\n';
  const { spec } = reviewAppSpec({ name: 'web', file: 'apps.d/web.yaml', text, defaults: TEST_DEFAULTS });
  assert.deepEqual(spec.warnings.filter((w) => GPU_KEYS.has(w.key)), []);
});
