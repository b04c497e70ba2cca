import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { readFile, stat, chmod } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { NetworkInterfaceInfo } from 'node:os';
import { join } from 'node:path';
import { connect, createServer } from 'node:tls';
import { ensureTlsCerts, hostNames, tlsPaths, type TlsDeps } from '../../src/init/tls.ts';
import { snapshotTree, tempDir } from './helpers.ts';
import { defer } from '../helpers/cleanup.ts';

const DAY = 86_400_000;
const NOW = Date.parse('2026-11-25T12:00:00Z');

function iface(address: string): NetworkInterfaceInfo {
  const v6 = address.includes(':');
  return v6
    ? { address, family: 'IPv6', netmask: 'ffff:ffff:ffff:ffff::', mac: '00:00:00:00:00:00', internal: false, cidr: `${address}/64`, scopeid: 0 }
    : { address, family: 'IPv4', netmask: '255.255.255.0', mac: '00:00:00:00:00:00', internal: false, cidr: `${address}/24` };
}

const HOST: TlsDeps = {
  now: () => NOW,
  hostname: 'TDX-Host-1',
  interfaces: { lo: [iface('127.0.0.1'), iface('::1')], eth0: [iface('192.0.2.10'), iface('fe80::1'), iface('2001:db8::10')] },
};

test('hostNames: hostname, localhost and every address but link-local', () => {
  const names = hostNames('TDX-Host-1', { eth0: [iface('192.0.2.10'), iface('fe80::1'), iface('169.254.3.4')], lo: [iface('127.0.0.1')] });
  assert.deepEqual(names, { dns: ['tdx-host-1', 'localhost'], ips: ['192.0.2.10', '127.0.0.1'] });
});

test('a CA and a server cert for every host name; keys 0600; the cert verifies against the CA', async (t) => {
  const dir = join(await tempDir(t), 'tls');
  const result = await ensureTlsCerts(dir, HOST);
  const paths = tlsPaths(dir);
  assert.deepEqual([...result.written].sort(), Object.values(paths).sort());
  assert.equal((await stat(paths.caKey)).mode & 0o777, 0o600);
  assert.equal((await stat(paths.key)).mode & 0o777, 0o600);

  const ca = new X509Certificate(await readFile(paths.caCert));
  const cert = new X509Certificate(await readFile(paths.cert));
  assert.equal(ca.ca, true);
  assert.equal(cert.ca, false);
  assert.ok(cert.checkIssued(ca));
  assert.ok(cert.verify(ca.publicKey));
  for (const host of ['tdx-host-1', 'localhost']) assert.equal(cert.checkHost(host), host);
  for (const ip of ['127.0.0.1', '::1', '192.0.2.10', '2001:db8::10']) assert.equal(cert.checkIP(ip), ip, `SAN ${ip}`);
  assert.equal(cert.checkIP('fe80::1'), undefined);
  assert.ok(Date.parse(cert.validTo) > NOW + 300 * DAY);
});

test('a real TLS handshake succeeds for a client that trusts only the CA', async (t) => {
  const dir = join(await tempDir(t), 'tls');
  const { paths } = await ensureTlsCerts(dir, { ...HOST, now: () => Date.now() });
  const server = createServer({ key: await readFile(paths.key), cert: await readFile(paths.cert) }, (socket) => socket.end('hello over tls\n'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  defer(t, () => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as AddressInfo).port;
  const ca = await readFile(paths.caCert);

  for (const servername of ['localhost', undefined]) {
    // undefined: the client checks the IP SAN 127.0.0.1 instead of a DNS name.
    const socket = connect({ host: '127.0.0.1', port, ca, ...(servername === undefined ? {} : { servername }) });
    await once(socket, 'secureConnect');
    assert.equal(socket.authorized, true, `authorized as ${servername ?? '127.0.0.1'}`);
    let text = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    await once(socket, 'end');
    assert.equal(text, 'hello over tls\n');
    socket.destroy();
  }
});

test('a re-run keeps valid certs and writes nothing', async (t) => {
  const root = await tempDir(t);
  const dir = join(root, 'tls');
  await ensureTlsCerts(dir, HOST);
  const before = await snapshotTree(root);
  const again = await ensureTlsCerts(dir, { ...HOST, now: () => NOW + 200 * DAY });
  assert.deepEqual(again.written, []);
  assert.deepEqual(await snapshotTree(root), before);
});

test('a new host address re-issues the server cert but keeps the CA', async (t) => {
  const dir = join(await tempDir(t), 'tls');
  const paths = tlsPaths(dir);
  await ensureTlsCerts(dir, HOST);
  const caBefore = await readFile(paths.caCert, 'utf8');
  const moved = await ensureTlsCerts(dir, { ...HOST, interfaces: { ...HOST.interfaces, eth1: [iface('198.51.100.7')] } });
  assert.deepEqual([...moved.written].sort(), [paths.cert, paths.key].sort());
  assert.equal(await readFile(paths.caCert, 'utf8'), caBefore);
  const cert = new X509Certificate(await readFile(paths.cert));
  assert.equal(cert.checkIP('198.51.100.7'), '198.51.100.7');
  assert.ok(cert.verify(new X509Certificate(caBefore).publicKey));
});

test('a server cert close to expiry is re-issued; a loosened key mode is fixed', async (t) => {
  const dir = join(await tempDir(t), 'tls');
  const paths = tlsPaths(dir);
  await ensureTlsCerts(dir, HOST);
  await chmod(paths.caKey, 0o644);
  const later = await ensureTlsCerts(dir, { ...HOST, now: () => NOW + 380 * DAY });
  assert.deepEqual([...later.written].sort(), [paths.caKey, paths.cert, paths.key].sort());
  assert.equal((await stat(paths.caKey)).mode & 0o777, 0o600);
  assert.ok(Date.parse(new X509Certificate(await readFile(paths.cert)).validTo) > NOW + 700 * DAY);
});

test('a CA near the end of its life is replaced, and the server cert with it', async (t) => {
  const dir = join(await tempDir(t), 'tls');
  const paths = tlsPaths(dir);
  await ensureTlsCerts(dir, HOST);
  const result = await ensureTlsCerts(dir, { ...HOST, now: () => NOW + 3400 * DAY });
  assert.deepEqual([...result.written].sort(), Object.values(paths).sort());
  const ca = new X509Certificate(await readFile(paths.caCert));
  assert.ok(new X509Certificate(await readFile(paths.cert)).verify(ca.publicKey));
});
