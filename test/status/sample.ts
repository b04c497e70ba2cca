import type { AppStatus } from '../../src/status/schema.ts';

// A valid running app status; tests override what they look at.
export function sampleStatus(overrides: Partial<AppStatus> = {}): AppStatus {
  return {
    app: 'shop',
    file: '/etc/dstack/apps.d/shop.yaml',
    phase: 'running',
    app_id: '0123456789abcdef0123456789abcdef01234567',
    vm_id: '6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f',
    compose_hash: 'fedcba9876543210'.repeat(4),
    urls: ['http://127.0.0.1:8080'],
    last_error: null,
    warnings: [],
    updated_at: '2026-01-01T00:00:00.000Z',
    ...overrides,
  };
}
