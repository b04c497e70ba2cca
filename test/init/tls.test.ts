// Init step 4: the host CA, and the server certificates the simulated gateway issues with it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { readFile, readdir, stat, chmod, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { connect, createServer } from 'node:tls';
import { ensureHostCa, issueServerCert, tlsPaths, type TlsDeps } from '../../src/init/tls.ts';
import { snapshotTree, tempDir } from './helpers.ts';
import { defer } from '../helpers/cleanup.ts';

const DAY = 86_400_000;
const NOW = Date.parse('2026-11-25T12:00:00Z');
const HOST: TlsDeps = { now: () => NOW, hostname: 'TDX-Host-1' };

test('issue 15: init writes the CA and its key (0600) and no server certificate, which nothing would serve', async (t) => {
  const dir = join(await tempDir(t), 'tls');
  const result = await ensureHostCa(dir, HOST);
  const paths = tlsPaths(dir);
  assert.deepEqual([...result.written].sort(), [paths.caCert, paths.caKey].sort());
  assert.deepEqual((await readdir(dir)).sort(), ['ca.crt', 'ca.key']);
  assert.equal((await stat(paths.caKey)).mode & 0o777, 0o600);
  const ca = new X509Certificate(await readFile(paths.caCert));
  assert.equal(ca.ca, true);
  assert.match(ca.subject, /CN=dstack-supervisor local CA \(tdx-host-1\)/);
  assert.ok(Date.parse(ca.validTo) > NOW + 3000 * DAY);
});

test('a server cert the CA issues passes a real TLS handshake for a client that trusts only the CA', async (t) => {
  const dir = join(await tempDir(t), 'tls');
  const { paths } = await ensureHostCa(dir, { hostname: 'tdx-host-1' });
  const caPem = { certPem: await readFile(paths.caCert, 'utf8'), keyPem: await readFile(paths.caKey, 'utf8') };
  const issued = issueServerCert({ dns: ['localhost', '*.apps.example.test'], ips: ['127.0.0.1'] }, caPem, Date.now());
  const server = createServer({ key: issued.keyPem, cert: issued.certPem }, (socket) => socket.end('hello over tls\n'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  defer(t, () => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as AddressInfo).port;

  for (const servername of ['localhost', 'shop-80.apps.example.test', undefined]) {
    // undefined: the client checks the IP SAN 127.0.0.1 instead of a DNS name.
    const socket = connect({ host: '127.0.0.1', port, ca: caPem.certPem, ...(servername === undefined ? {} : { servername }) });
    await once(socket, 'secureConnect');
    assert.equal(socket.authorized, true, `authorized as ${servername ?? '127.0.0.1'}`);
    let text = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    await once(socket, 'end');
    assert.equal(text, 'hello over tls\n');
    socket.destroy();
  }
});

test('a re-run keeps a valid CA and writes nothing', async (t) => {
  const root = await tempDir(t);
  const dir = join(root, 'tls');
  await ensureHostCa(dir, HOST);
  const before = await snapshotTree(root);
  const again = await ensureHostCa(dir, { ...HOST, now: () => NOW + 200 * DAY });
  assert.deepEqual(again.written, []);
  assert.deepEqual(await snapshotTree(root), before);
});

test('a loosened key mode is fixed; a broken CA is replaced', async (t) => {
  const dir = join(await tempDir(t), 'tls');
  const paths = tlsPaths(dir);
  await ensureHostCa(dir, HOST);
  await chmod(paths.caKey, 0o644);
  assert.deepEqual((await ensureHostCa(dir, HOST)).written, [paths.caKey]);
  assert.equal((await stat(paths.caKey)).mode & 0o777, 0o600);
  await writeFile(paths.caCert, 'not a certificate\n');
  assert.deepEqual([...(await ensureHostCa(dir, HOST)).written].sort(), [paths.caCert, paths.caKey].sort());
  assert.equal(new X509Certificate(await readFile(paths.caCert)).ca, true);
});

test('a CA near the end of its life is replaced', async (t) => {
  const dir = join(await tempDir(t), 'tls');
  const paths = tlsPaths(dir);
  await ensureHostCa(dir, HOST);
  const before = await readFile(paths.caCert, 'utf8');
  const result = await ensureHostCa(dir, { ...HOST, now: () => NOW + 3400 * DAY });
  assert.deepEqual([...result.written].sort(), [paths.caCert, paths.caKey].sort());
  assert.notEqual(await readFile(paths.caCert, 'utf8'), before);
});
