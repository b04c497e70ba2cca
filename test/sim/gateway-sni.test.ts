import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDestination, scanSni } from '../../src/sim/gateway-sni.ts';

test('the first SNI label follows upstream parse_dst_info', () => {
  const table: [string, ReturnType<typeof parseDestination>][] = [
    ['myapp', { id: 'myapp', port: 80, passthrough: false, h2: false }],
    ['myapp-8080', { id: 'myapp', port: 8080, passthrough: false, h2: false }],
    ['myapp-443s', { id: 'myapp', port: 443, passthrough: true, h2: false }],
    ['myapp-8443s', { id: 'myapp', port: 8443, passthrough: true, h2: false }],
    ['myapps', { id: 'myapps', port: 80, passthrough: false, h2: false }],
    ['myapp-s', { id: 'myapp', port: 443, passthrough: true, h2: false }],
    ['myapp-50051g', { id: 'myapp', port: 50051, passthrough: false, h2: true }],
    ['myapp-g', { id: 'myapp', port: 80, passthrough: false, h2: true }],
  ];
  for (const [label, want] of table) assert.deepEqual(parseDestination(label), want, label);
  const refused: [string, string][] = [
    ['-80', 'app id is empty'],
    ['myapp-443gs', 'invalid port'],
    ['myapp-443sg', 'invalid sni format: `gs` is not allowed'],
    ['myapp-99999', 'invalid port'],
    ['my-app-80', 'invalid port'],
    ['myapp-80-1', 'invalid sni format'],
  ];
  for (const [label, message] of refused) assert.throws(() => parseDestination(label), { message }, label);
});

test('the SNI scan asks for more bytes on a truncated ClientHello and says none for other traffic', () => {
  assert.deepEqual(scanSni(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), { kind: 'none' });
  const hello = clientHello('web-8080.apps.example.test');
  assert.deepEqual(scanSni(hello), { kind: 'found', name: 'web-8080.apps.example.test' });
  assert.deepEqual(scanSni(hello.subarray(0, hello.length - 3)), { kind: 'more' });
  assert.deepEqual(scanSni(hello.subarray(0, 8)), { kind: 'more' });
});

// A minimal TLS record holding a ClientHello with one cipher suite and a server_name extension.
function clientHello(name: string): Buffer {
  const host = Buffer.from(name);
  const sniBody = Buffer.concat([u16(host.length + 3), Buffer.from([0]), u16(host.length), host]);
  const extensions = Buffer.concat([u16(0), u16(sniBody.length), sniBody]);
  const body = Buffer.concat([Buffer.from([3, 3]), Buffer.alloc(32), Buffer.from([0]), u16(2), Buffer.from([0x13, 0x01]), Buffer.from([1, 0]), u16(extensions.length), extensions]);
  const handshake = Buffer.concat([Buffer.from([1, 0, body.length >> 8, body.length & 0xff]), body]);
  return Buffer.concat([Buffer.from([0x16, 3, 1]), u16(handshake.length), handshake]);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
