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
  ['tcp and udp on one host port', '      - "5353:53/udp"\n      - "5353:53"\n', ['tcp 10.9.8.7:5353>5353', 'udp 10.9.8.7:5353>5353'], 0],
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
  ['long syntax udp, upper case', '      - target: 53\n        published: 5353\n        protocol: UDP\n', ['udp 10.9.8.7:5353>5353'], 0],
  ['long syntax without published', '      - target: 80\n', [], 1],
  ['long syntax extra keys ignored', '      - target: 80\n        published: 8081\n        mode: host\n        name: web\n', ['tcp 10.9.8.7:8081>8081'], 0],
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
  const spec = specOf('services:\n  b:\n    image: nginx\n    ports: ["9000:1", "5353:53/udp"]\n  a:\n    image: nginx\n    ports: ["8000:1", "1100:1"]\n');
  assert.deepEqual(portsOf(spec), ['tcp 10.9.8.7:1100>1100', 'tcp 10.9.8.7:8000>8000', 'tcp 10.9.8.7:9000>9000', 'udp 10.9.8.7:5353>5353']);
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
  ['host port published twice in one service', '      - "8080:80"\n      - "8080:8080"\n', /host port 8080\/tcp is published twice/],
  ['host port published twice via a range', '      - "8080-8081:80-81"\n      - "8081:90"\n', /8081\/tcp is published twice/],
  ['same port on two addresses', '      - "127.0.0.1:8080:80"\n      - "0.0.0.0:8080:80"\n', /published twice/],
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
  const err = failureOf('services:\n  a:\n    ports: ["8080:80"]\n    image: nginx\n  b:\n    ports:\n      - "8080:8080"\n    image: nginx\n', 'APP_PORTS');
  assert.match(err.message, /^apps\.d\/web\.yaml:7:9: services\.b\.ports\[0\]: /);
  assert.match(err.message, /service a \("8080:80"\) and service b \("8080:8080"\)/);
});

test('ports: services in an inactive profile publish nothing', () => {
  const spec = specOf('services:\n  web:\n    image: nginx\n    ports: ["8080:80"]\n  debug:\n    profiles: [debug]\n    ports: ["8080:80"]\n');
  assert.deepEqual(portsOf(spec), ['tcp 10.9.8.7:8080>8080']);
});

// Issue 13 item 5: `"1-1024:1-1024"` took 22 and 53 from the host, and a KMS port in a file was
// refused only by CreateVm, retried for ever. Host ports below 1024 need supervisor.toml
// `[apps] privileged_ports`; ports init gave the host's own services are never an app's.
const KMS = { protocol: 'tcp', port: 9201, owner: "the KMS's (init)" };
const VMM = { protocol: 'tcp', port: 9080, owner: "dstack-vmm's ([vmm] url)" };
const ALLOW_WEB = { privileged: [443, 80], reserved: [KMS, VMM] };

// [case, ports YAML, policy (absent: the shipped default), the sentence after the entry's path]
const HOST_REFUSED: [string, string, typeof ALLOW_WEB | undefined, string][] = [
  [
    'a range over the well-known ports',
    '      - "1-1024:1-1024"\n',
    undefined,
    'services.web.ports[0]: service web ("1-1024:1-1024"): host port 1/tcp is below 1024, where the host\'s own services listen ' +
      '(sshd 22, DNS 53); publish the app on a port from 1024 up, or add 1 to supervisor.toml [apps] privileged_ports (now 80, 443)',
  ],
  ['sshd\'s port', '      - "22:22"\n', undefined, 'host port 22/tcp is below 1024'],
  ['DNS over udp', '      - "53:53/udp"\n', undefined, 'host port 53/udp is below 1024'],
  ['long syntax', '      - target: 25\n        published: 25\n', undefined, 'add 25 to supervisor.toml [apps] privileged_ports (now 80, 443)'],
  ['a port the operator did not list', '      - "22:22"\n', ALLOW_WEB, 'add 22 to supervisor.toml [apps] privileged_ports (now 80, 443)'],
  ['the KMS port init chose', '      - "9201:8000"\n', ALLOW_WEB, 'service web ("9201:8000"): host port 9201/tcp is the KMS\'s (init); publish the app on another port'],
  ['the VMM\'s port', '      - "127.0.0.1:9080:80"\n', ALLOW_WEB, 'host port 9080/tcp is dstack-vmm\'s ([vmm] url)'],
  ['a range through the KMS port', '      - "9200-9202:9200-9202"\n', ALLOW_WEB, 'host port 9201/tcp is the KMS\'s (init)'],
];

for (const [name, ports, policy, sentence] of HOST_REFUSED) {
  test(`ports refused: ${name}`, () => {
    const err = failureOf(withPorts(ports), 'APP_PORTS', [], policy);
    assert.ok(err.message.includes(sentence), err.message);
    assert.match(err.message, /^apps\.d\/web\.yaml:5:\d+: services\.web\.ports\[0\]: /);
  });
}

test('ports: listed privileged ports, and a reserved port over the other protocol, are published', () => {
  const spec = specOf(withPorts('      - "80:80"\n      - "443:443"\n      - "9201:53/udp"\n'), [], ALLOW_WEB);
  assert.deepEqual(portsOf(spec), ['tcp 10.9.8.7:80>80', 'tcp 10.9.8.7:443>443', 'udp 10.9.8.7:9201>9201']);
});

test('ports refused: x-dstack.ports obey the same host rules', () => {
  const text = 'services:\n  web:\n    image: nginx\nx-dstack:\n  ports: ["8080:80", "tcp:0.0.0.0:22:22"]\n';
  const err = failureOf(text, 'APP_PORTS');
  assert.match(err.message, /^apps\.d\/web\.yaml:5:22: x-dstack\.ports\[1\]: host port 22\/tcp is below 1024/);
  const kms = failureOf('services:\n  web:\n    image: nginx\nx-dstack:\n  ports: ["9201:8000"]\n', 'APP_PORTS', [], ALLOW_WEB);
  assert.match(kms.message, /host port 9201\/tcp is the KMS's \(init\)/);
});

test('ports refused: ranges publishing more host ports than exist stop at the entry past them (issue 13)', () => {
  // 5 KB that made 2 million mappings, 2 s and 330 MB before the duplicate was found.
  const services = Array.from({ length: 100 }, (_, i) => `  s${i}:\n    image: nginx\n    ports: ["20000-40000:20000-40000"]\n`).join('');
  const err = failureOf(`services:\n${services}`, 'APP_PORTS');
  assert.match(err.message, /services\.s6\.ports\[0\]: publishes more than 131070 host ports with the entries up to here, more than there are/);
});
