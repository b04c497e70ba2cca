import { test } from 'node:test';
import assert from 'node:assert/strict';
import { failureOf, portsOf, specOf } from './helpers.ts';

// One service whose `ports:` block is `ports` (YAML, already indented for the list).
const withPorts = (ports: string) => `services:\n  web:\n    image: nginx\n    ports:\n${ports}`;

const ACCEPTED: [string, string, string[], number][] = [
  // [case, ports YAML, mappings, warnings]
  ['host:container', '      - "9300:80"\n', ['tcp 10.9.8.7:9300>9300'], 0],
  ['unquoted host:container', '      - 9300:80\n', ['tcp 10.9.8.7:9300>9300'], 0],
  ['IPv4 prefix sets host_address (and warns)', '      - "127.0.0.1:9300:80"\n', ['tcp 127.0.0.1:9300>9300'], 1],
  ['0.0.0.0 prefix (no warning: the CVM binds all addresses)', '      - "0.0.0.0:9300:80"\n', ['tcp 0.0.0.0:9300>9300'], 0],
  ['[::] prefix', '      - "[::]:9300:80"\n', ['tcp :::9300>9300'], 0],
  ['bracketed IPv6 prefix', '      - "[::1]:9300:80"\n', ['tcp ::1:9300>9300'], 1],
  ['bare IPv6 prefix', '      - "fd00::1:9300:80"\n', ['tcp fd00::1:9300>9300'], 1],
  ['udp suffix', '      - "5353:53/udp"\n', ['udp 10.9.8.7:5353>5353'], 0],
  ['tcp and udp on one host port', '      - "53:53/udp"\n      - "53:53"\n', ['tcp 10.9.8.7:53>53', 'udp 10.9.8.7:53>53'], 0],
  ['range', '      - "8080-8082:80-82"\n', ['tcp 10.9.8.7:8080>8080', 'tcp 10.9.8.7:8081>8081', 'tcp 10.9.8.7:8082>8082'], 0],
  ['range with IP and udp', '      - "127.0.0.1:7000-7001:7000-7001/udp"\n', ['udp 127.0.0.1:7000>7000', 'udp 127.0.0.1:7001>7001'], 1],
  ['container port only (string)', '      - "80"\n', [], 1],
  ['container port only (number)', '      - 80\n', [], 1],
  ['IP with empty host port', '      - "127.0.0.1::80"\n', [], 2],
  ['host port 0 means ephemeral', '      - "0:80"\n', [], 1],
  ['container range without host', '      - "80-81"\n', [], 1],
  ['long syntax', '      - target: 80\n        published: 8080\n', ['tcp 10.9.8.7:8080>8080'], 0],
  ['long syntax, published string', '      - target: 80\n        published: "8080"\n', ['tcp 10.9.8.7:8080>8080'], 0],
  [
    'long syntax, published range',
    '      - target: 80\n        published: "8080-8080"\n        host_ip: 0.0.0.0\n',
    ['tcp 0.0.0.0:8080>8080'],
    0,
  ],
  ['long syntax udp, upper case', '      - target: 53\n        published: 53\n        protocol: UDP\n', ['udp 10.9.8.7:53>53'], 0],
  ['long syntax without published', '      - target: 80\n', [], 1],
  ['long syntax extra keys ignored', '      - target: 80\n        published: 81\n        mode: host\n        name: web\n', ['tcp 10.9.8.7:81>81'], 0],
  ['empty ports list', '      []\n', [], 0],
];

for (const [name, ports, expected, warnings] of ACCEPTED) {
  test(`ports: ${name}`, () => {
    const spec = specOf(withPorts(ports));
    assert.deepEqual(portsOf(spec), expected);
    assert.equal(spec.warnings.filter((w) => w.key === 'ports').length, warnings);
  });
}

test('ports: `ports:` with no value publishes nothing', () => {
  assert.deepEqual(portsOf(specOf('services:\n  web:\n    image: nginx\n    ports:\n')), []);
});

test('ports: output is sorted by protocol then host port, across services', () => {
  const spec = specOf('services:\n  b:\n    image: nginx\n    ports: ["9000:1", "53:53/udp"]\n  a:\n    image: nginx\n    ports: ["8000:1", "100:1"]\n');
  assert.deepEqual(portsOf(spec), ['tcp 10.9.8.7:100>100', 'tcp 10.9.8.7:8000>8000', 'tcp 10.9.8.7:9000>9000', 'udp 10.9.8.7:53>53']);
});

test('ports: an IP prefix warns that the CVM binds it too', () => {
  const [loopback] = specOf(withPorts('      - "127.0.0.1:9300:80"\n')).warnings;
  assert.match(loopback?.message ?? '', /binds 127\.0\.0\.1 inside the CVM too.*likely unreachable.*"tcp:127\.0\.0\.1:9300:9300"/);
  const [other] = specOf(withPorts('      - "[fd00::1]:9300:80/udp"\n')).warnings;
  assert.match(other?.message ?? '', /an address the CVM does not have, so the container fails to start.*"udp:\[fd00::1\]:9300:9300"/);
});

test('ports: a service with network_mode host maps no ports (compose drops them)', () => {
  const spec = specOf('services:\n  web:\n    image: nginx\n    network_mode: host\n    ports: ["80:80"]\n');
  assert.deepEqual(portsOf(spec), []);
  assert.deepEqual(spec.warnings.map((w) => w.key), ['network_mode']);
});

test('ports: the no-host-port warning names the service and says why', () => {
  const [warning] = specOf(withPorts('      - "80"\n')).warnings;
  assert.equal(warning?.service, 'web');
  assert.equal(warning?.key, 'ports');
  assert.match(warning?.message ?? '', /not reachable from the host/);
});

const REFUSED: [string, string, RegExp][] = [
  ['host port published twice in one service', '      - "80:80"\n      - "80:8080"\n', /host port 80\/tcp is published twice/],
  ['host port published twice via a range', '      - "8080-8081:80-81"\n      - "8081:90"\n', /8081\/tcp is published twice/],
  ['same port on two addresses', '      - "127.0.0.1:80:80"\n      - "0.0.0.0:80:80"\n', /published twice/],
  ['sctp', '      - "80:80/sctp"\n', /tcp and udp only/],
  ['not a number', '      - "abc:80"\n', /"abc" is not a port/],
  ['out of range', '      - "70000:80"\n', /"70000" is not a port/],
  ['reversed range', '      - "8081-8080:80-81"\n', /is not a port/],
  ['host range for one container port', '      - "8080-8081:80"\n', /compose pick any one of them/],
  ['range length mismatch', '      - "8080-8082:80-81"\n', /differ in length/],
  ['bad IP', '      - "300.1.1.1:80:80"\n', /not an IP address/],
  ['interpolated port', '      - "${PORT}:80"\n', /interpolation/],
  ['interpolated long-syntax port', '      - target: 80\n        published: ${PORT:-8080}\n', /interpolation/],
  ['long syntax without target', '      - published: 80\n', /target/],
  ['long syntax bad published', '      - target: 80\n        published: http\n', /"http" is not a port/],
  ['ports not a list', '      "80:80"\n', /must be a list/],
];

for (const [name, ports, message] of REFUSED) {
  test(`ports refused: ${name}`, () => {
    const err = failureOf(withPorts(ports), name === 'long syntax without target' || name === 'ports not a list' ? 'APP_SCHEMA' : 'APP_PORTS');
    assert.match(err.message, message);
  });
}

test('ports refused: a host port used by two services names both and points at the second', () => {
  const err = failureOf('services:\n  a:\n    ports: ["80:80"]\n    image: nginx\n  b:\n    ports:\n      - "80:8080"\n    image: nginx\n', 'APP_PORTS');
  assert.match(err.message, /^apps\.d\/web\.yaml:7:9: services\.b\.ports\[0\]: /);
  assert.match(err.message, /service a \("80:80"\) and service b \("80:8080"\)/);
});

test('ports: services in an inactive profile publish nothing', () => {
  const spec = specOf('services:\n  web:\n    image: nginx\n    ports: ["80:80"]\n  debug:\n    profiles: [debug]\n    ports: ["80:80"]\n');
  assert.deepEqual(portsOf(spec), ['tcp 10.9.8.7:80>80']);
});

test('ports refused: ranges publishing more host ports than exist stop at the entry past them (issue 13)', () => {
  // 5 KB that made 2 million mappings, 2 s and 330 MB before the duplicate was found.
  const services = Array.from({ length: 100 }, (_, i) => `  s${i}:\n    image: nginx\n    ports: ["20000-40000:20000-40000"]\n`).join('');
  const err = failureOf(`services:\n${services}`, 'APP_PORTS');
  assert.match(err.message, /services\.s6\.ports\[0\]: publishes more than 131070 host ports with the entries up to here, more than there are/);
});
