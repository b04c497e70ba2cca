// The simulated DNS server, asked by node:dns (c-ares) over real UDP: the wire format is right
// when a real resolver accepts its answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Resolver } from 'node:dns/promises';
import { startSimDns, answerQuery } from '../../src/sim/dns-server.ts';
import { defer } from '../helpers/cleanup.ts';

async function resolverFor(t: Parameters<typeof defer>[0], zones: string[] = []) {
  const dns = await startSimDns({ zones: () => zones });
  defer(t, () => dns.close());
  const resolver = new Resolver({ timeout: 1000, tries: 1 });
  resolver.setServers([dns.server]);
  return { dns, resolver };
}

const codeOf = (promise: Promise<unknown>) => promise.then(() => 'resolved', (err: NodeJS.ErrnoException) => err.code);

test('names under a zone resolve to the host address; others are NXDOMAIN; AAAA of a known name is NODATA', async (t) => {
  const { dns, resolver } = await resolverFor(t, ['apps.example.test']);
  assert.deepEqual(await resolver.resolve4('abc-8080.apps.example.test'), ['127.0.0.1']);
  assert.deepEqual(await resolver.resolve4('ABC-8080.Apps.Example.Test'), ['127.0.0.1'], 'case-insensitive');
  assert.equal(await codeOf(resolver.resolve4('apps.example.test')), 'ENOTFOUND', 'the wildcard covers names below the zone only');
  assert.equal(await codeOf(resolver.resolve4('elsewhere.example.org')), 'ENOTFOUND');
  assert.equal(await codeOf(resolver.resolve6('abc.apps.example.test')), 'ENODATA');
  assert.deepEqual(dns.queries().slice(0, 2), ['abc-8080.apps.example.test', 'abc-8080.apps.example.test']);
});

test('answer() sets a wildcard or an exact name (exact wins), NXDOMAIN on request, and undefined drops it', async (t) => {
  const { dns, resolver } = await resolverFor(t, ['apps.example.test']);
  dns.answer('*.apps.example.test', ['203.0.113.9', '198.51.100.4']);
  dns.answer('www.apps.example.test', ['192.0.2.1']);
  assert.deepEqual((await resolver.resolve4('x.y.apps.example.test')).sort(), ['198.51.100.4', '203.0.113.9']);
  assert.deepEqual(await resolver.resolve4('www.apps.example.test'), ['192.0.2.1']);
  dns.answer('*.apps.example.test', 'nxdomain');
  assert.equal(await codeOf(resolver.resolve4('x.apps.example.test')), 'ENOTFOUND');
  dns.answer('*.apps.example.test', undefined);
  assert.deepEqual(await resolver.resolve4('x.apps.example.test'), ['127.0.0.1']);
});

test('a reply that is not a query is dropped; a malformed question is FORMERR, another opcode NOTIMP', () => {
  const query = Buffer.from('abcd01000001000000000000', 'hex');
  assert.equal(answerQuery(Buffer.from('abcd81000001000000000000', 'hex'), () => []), undefined, 'a response (QR set)');
  assert.equal(answerQuery(Buffer.alloc(5), () => []), undefined, 'shorter than a header');
  const formErr = answerQuery(Buffer.concat([query, Buffer.from([70])]), () => []);
  assert.equal(formErr?.readUInt16BE(0), 0xabcd);
  assert.equal(formErr![3]! & 0x0f, 1);
  assert.equal(formErr?.readUInt16BE(4), 0, 'no question echoed');
  const status = Buffer.from(query);
  status[2] = 0x10;
  assert.equal(answerQuery(status, () => [])![3]! & 0x0f, 4);
});
