import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseVmmAddress } from '../../src/vmm/transport.ts';

describe('parseVmmAddress', () => {
  const good: [string, ReturnType<typeof parseVmmAddress>][] = [
    ['unix:/run/dstack/vmm.sock', { baseUrl: 'http://localhost', socketPath: '/run/dstack/vmm.sock' }],
    ['unix:./vmm.sock', { baseUrl: 'http://localhost', socketPath: './vmm.sock' }],
    ['tcp:127.0.0.1:9080', { baseUrl: 'http://127.0.0.1:9080' }],
    ['tcp:[::1]:9080', { baseUrl: 'http://[::1]:9080' }],
    ['tcp:vmm.local:9080', { baseUrl: 'http://vmm.local:9080' }],
    ['http://127.0.0.1:9080/', { baseUrl: 'http://127.0.0.1:9080' }],
    ['https://vmm.example:443', { baseUrl: 'https://vmm.example:443' }],
  ];
  for (const [address, expected] of good) {
    test(address, () => assert.deepEqual(parseVmmAddress(address), expected));
  }

  for (const address of ['', 'unix:', 'tcp:127.0.0.1', 'tcp:host:port', '127.0.0.1:9080', 'ftp://x', 'http://']) {
    test(`rejects ${JSON.stringify(address)}`, () => {
      assert.throws(() => parseVmmAddress(address), { code: 'VMM_ADDRESS' });
    });
  }
});
