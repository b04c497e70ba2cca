import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolvePortClaims, describePortConflict } from '../../src/controller/port-claims.ts';

const tcp = (host_port: number) => ({ protocol: 'tcp', host_port });

test('the later app is refused with both names; the running one keeps the port', () => {
  const refused = resolvePortClaims([
    { name: 'shop', file: 'apps.d/shop.yaml', ports: [tcp(8080)], holds: false },
    { name: 'blog', file: 'apps.d/blog.yaml', ports: [tcp(8080)], holds: true },
  ]);
  assert.deepEqual([...refused.keys()], ['shop']);
  assert.equal(
    describePortConflict(refused.get('shop')!),
    'apps.d/shop.yaml: port 8080/tcp is already published by app "blog" (apps.d/blog.yaml); change one of them',
  );
});

test('tcp and udp on the same number do not clash; order among new apps is by name', () => {
  const refused = resolvePortClaims([
    { name: 'b', file: 'b.yml', ports: [tcp(53)], holds: false },
    { name: 'a', file: 'a.yml', ports: [{ protocol: 'udp', host_port: 53 }, tcp(53)], holds: false },
    { name: 'c', file: 'c.yml', ports: [{ protocol: 'udp', host_port: 54 }], holds: false },
  ]);
  assert.deepEqual([...refused.keys()], ['b']);
  assert.equal(refused.get('b')!.owner, 'a');
});
