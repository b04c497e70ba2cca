import { test } from 'node:test';
import assert from 'node:assert/strict';
import { failureOf, portsOf, specOf } from './helpers.ts';

const withOverrides = (body: string) => `services:\n  web:\n    image: nginx\n    ports: ["8080:80"]\nx-dstack:\n${body}`;

const VALID: [string, string, Record<string, unknown>][] = [
  ['vcpu', '  vcpu: 8\n', { vcpu: 8 }],
  ['memory in MB', '  memory: 3072\n', { memory: 3072 }],
  ['memory "2G"', '  memory: 2G\n', { memory: 2048 }],
  ['memory "512M"', '  memory: "512M"\n', { memory: 512 }],
  ['memory "1.5GiB"', '  memory: 1.5GiB\n', { memory: 1536 }],
  ['memory "2gb" lower case', '  memory: 2gb\n', { memory: 2048 }],
  ['disk in GB', '  disk: 50\n', { disk: 50 }],
  ['disk "20G"', '  disk: "20G"\n', { disk: 20 }],
  ['disk "1T"', '  disk: 1T\n', { disk: 1024 }],
  ['disk "2048M"', '  disk: 2048M\n', { disk: 2 }],
  ['image', '  image: dstack-dev-0.5.11\n', { image: 'dstack-dev-0.5.11' }],
  ['kms false', '  kms: false\n', { kms: false }],
  // Asked for, but no gateway serves here: the app runs on its direct ports (issue 14).
  ['gateway true', '  gateway: true\n', { gatewayWanted: true, gateway: false }],
  ['public_logs false', '  public_logs: false\n', { publicLogs: false }],
  ['public_sysinfo false', '  public_sysinfo: false\n', { publicSysinfo: false }],
  ['vcpu at the ceiling', '  vcpu: 1024\n', { vcpu: 1024 }],
  ['memory at the ceiling', '  memory: 64T\n', { memory: 67108864 }],
  ['disk at the ceiling', '  disk: 64T\n', { disk: 65536 }],
  // Issue 19: every GPU the VMM can attach, a number of free ones, or PCI addresses in one form.
  ['gpus all', '  gpus: all\n', { gpus: 'all' }],
  ['gpus 2', '  gpus: 2\n', { gpus: 2 }],
  ['gpus by address, either form lspci prints', '  gpus: ["0000:18:00.0", "2A:00.0"]\n', { gpus: ['0000:18:00.0', '0000:2a:00.0'] }],
  ['gpus under a VMD domain', '  gpus: ["10000:01:00.0"]\n', { gpus: ['10000:01:00.0'] }],
];

for (const [name, body, expected] of VALID) {
  test(`x-dstack accepts ${name}`, () => {
    const spec = specOf(withOverrides(body)) as unknown as Record<string, unknown>;
    for (const [key, value] of Object.entries(expected)) assert.deepEqual(spec[key], value, key);
  });
}

test('x-dstack absent or empty keeps the defaults', () => {
  for (const text of [withOverrides(''), withOverrides('  {}\n')]) {
    const spec = specOf(text);
    assert.deepEqual(
      [spec.vcpu, spec.memory, spec.disk, spec.image, spec.kms, spec.gateway, spec.publicLogs, spec.publicSysinfo],
      [2, 2048, 20, 'dstack-0.5.11', true, false, true, true],
    );
  }
});

test('x-dstack ports replace the derived ones, in every dstack CLI form', () => {
  const spec = specOf(withOverrides('  ports:\n    - "9000:80"\n    - tcp:9001:81\n    - udp:0.0.0.0:5353:53\n    - "tcp:[::1]:2200:22"\n'));
  assert.deepEqual(portsOf(spec), ['tcp ::1:2200>22', 'tcp 10.9.8.7:9000>80', 'tcp 10.9.8.7:9001>81', 'udp 0.0.0.0:5353>53']);
});

test('x-dstack ports: an empty list publishes nothing', () => {
  assert.deepEqual(portsOf(specOf(withOverrides('  ports: []\n'))), []);
});

const REFUSED: [string, string, string, RegExp][] = [
  ['unknown key', '  cpus: 2\n', 'APP_XDSTACK_KEY', /x-dstack\.cpus: unknown key; x-dstack accepts vcpu, memory/],
  ['misspelt key', '  public_log: true\n', 'APP_XDSTACK_KEY', /x-dstack\.public_log: unknown key/],
  ['not a mapping', '  - vcpu\n', 'APP_XDSTACK_VALUE', /x-dstack: must be a mapping/],
  ['vcpu 0', '  vcpu: 0\n', 'APP_XDSTACK_VALUE', /x-dstack\.vcpu: 0 is not a whole number of vCPUs ≥ 1/],
  ['vcpu fraction', '  vcpu: 1.5\n', 'APP_XDSTACK_VALUE', /x-dstack\.vcpu: 1\.5 is not a whole number of vCPUs/],
  ['vcpu string', '  vcpu: "2"\n', 'APP_XDSTACK_VALUE', /x-dstack\.vcpu/],
  ['memory unit', '  memory: 2X\n', 'APP_XDSTACK_VALUE', /x-dstack\.memory: "2X" is not a whole number of MB/],
  ['memory zero', '  memory: 0\n', 'APP_XDSTACK_VALUE', /x-dstack\.memory/],
  ['memory fraction of MB', '  memory: 1.5\n', 'APP_XDSTACK_VALUE', /x-dstack\.memory/],
  ['memory bool', '  memory: true\n', 'APP_XDSTACK_VALUE', /x-dstack\.memory: must be a number or a size/],
  ['disk not whole GB', '  disk: 512M\n', 'APP_XDSTACK_VALUE', /x-dstack\.disk: "512M" is not a whole number of GB/],
  ['image with slash', '  image: ../etc\n', 'APP_XDSTACK_VALUE', /x-dstack\.image/],
  ['image with ..', '  image: a..b\n', 'APP_XDSTACK_VALUE', /must not contain "\.\."/],
  ['image too long', `  image: ${'a'.repeat(65)}\n`, 'APP_XDSTACK_VALUE', /1-64 characters/],
  ['kms string', '  kms: "yes"\n', 'APP_XDSTACK_VALUE', /x-dstack\.kms: must be true or false/],
  ['ports not a list', '  ports: "80:80"\n', 'APP_XDSTACK_VALUE', /x-dstack\.ports: must be a list/],
  ['port without host side', '  ports: ["80"]\n', 'APP_PORTS', /x-dstack\.ports\[0\]: "80" has no host port/],
  ['port as number', '  ports: [80]\n', 'APP_PORTS', /has no host port/],
  ['auto host port', '  ports: ["auto:80"]\n', 'APP_PORTS', /automatic host ports are not supported/],
  ['empty host port', '  ports: ["tcp::80"]\n', 'APP_PORTS', /give a fixed host port/],
  ['bad protocol', '  ports: ["sctp:80:80"]\n', 'APP_PORTS', /protocol must be tcp or udp/],
  ['bad address', '  ports: ["tcp:localhost:80:80"]\n', 'APP_PORTS', /"localhost" is not an IP address/],
  ['too many parts', '  ports: ["tcp:1.2.3.4:80:80:80"]\n', 'APP_PORTS', /is not one of/],
  ['port out of range', '  ports: ["80:65536"]\n', 'APP_PORTS', /ports must be numbers 1-65535/],
  ['port as mapping', '  ports: [{target: 80}]\n', 'APP_PORTS', /must be a string/],
  ['gpus 0', '  gpus: 0\n', 'APP_XDSTACK_VALUE', /x-dstack\.gpus: must be all, a whole number of GPUs from 1 to 64, or a list of PCI addresses/],
  ['gpus 65', '  gpus: 65\n', 'APP_XDSTACK_VALUE', /x-dstack\.gpus: must be all/],
  ['gpus "any"', '  gpus: any\n', 'APP_XDSTACK_VALUE', /x-dstack\.gpus: must be all/],
  ['gpus empty list', '  gpus: []\n', 'APP_XDSTACK_VALUE', /x-dstack\.gpus: must be all/],
  ['gpus not an address', '  gpus: ["0", "gpu1"]\n', 'APP_XDSTACK_VALUE', /x-dstack\.gpus\[0\]: "0" is not a PCI address; write it as lspci/],
  ['gpus twice the same GPU', '  gpus: ["18:00.0", "0000:18:00.0"]\n', 'APP_XDSTACK_VALUE', /x-dstack\.gpus\[1\]: 0000:18:00\.0 is listed twice/],
  ['duplicate host port', '  ports: ["8080:80", "tcp:0.0.0.0:8080:81"]\n', 'APP_PORTS', /host port 8080\/tcp is published twice \(x-dstack\.ports\[0\] and x-dstack\.ports\[1\]\)/],
];

for (const [name, body, code, message] of REFUSED) {
  test(`x-dstack refuses ${name}`, () => {
    assert.match(failureOf(withOverrides(body), code).message, message);
  });
}

test('x-dstack errors carry the line and column of the offending key', () => {
  const err = failureOf(withOverrides('  vcpu: 2\n  memroy: 4G\n'), 'APP_XDSTACK_KEY');
  assert.deepEqual(err.position, { line: 7, column: 11 });
  assert.match(err.message, /^apps\.d\/web\.yaml:7:11: x-dstack\.memroy: /);
});

test('malformed compose ports are refused even when x-dstack ports replace them', () => {
  failureOf('services:\n  web:\n    image: nginx\n    ports: ["x:80"]\nx-dstack:\n  ports: ["80:80"]\n', 'APP_PORTS');
});

// Issue 13 item 5: values no CVM can have were deployed, failed and retried for ever (9999999G
// reached the VMM client as a zod JSON dump). Each is now one sentence naming the key, the value
// and the limit. [case, x-dstack body, the sentence after "x-dstack.KEY: "]
const BEYOND: [string, string, string][] = [
  ['memory: 9999999G', '  memory: 9999999G\n', 'memory: "9999999G" (10239998976 MB) is more than 64T (67108864 MB), the most a CVM can have; give at most 64T'],
  ['memory: 1e300', '  memory: 1e300\n', 'memory: 1e+300 MB is more than 64T (67108864 MB), the most a CVM can have; give at most 64T'],
  ['memory: 65T', '  memory: 65T\n', 'memory: "65T" (68157440 MB) is more than 64T (67108864 MB), the most a CVM can have; give at most 64T'],
  ['memory beyond double range', `  memory: ${'9'.repeat(400)}G\n`, `memory: "${'9'.repeat(400)}G" (Infinity MB) is more than 64T`],
  ['memory negative', '  memory: -2048\n', 'memory: -2048 is not a whole number of MB ≥ 1 (write e.g. 2048 or "2G")'],
  ['memory "1e300"', '  memory: "1e300"\n', 'memory: "1e300" is not a whole number of MB ≥ 1'],
  ['vcpu: 100000', '  vcpu: 100000\n', 'vcpu: 100000 vCPUs is more than 1024 vCPUs, the most a CVM can have; give at most 1024'],
  ['vcpu: 1e300', '  vcpu: 1e300\n', 'vcpu: 1e+300 vCPUs is more than 1024 vCPUs'],
  ['vcpu negative', '  vcpu: -1\n', 'vcpu: -1 is not a whole number of vCPUs ≥ 1 (write e.g. 2)'],
  ['disk: 1e300', '  disk: 1e300\n', 'disk: 1e+300 GB is more than 64T (65536 GB), the most a CVM can have; give at most 64T'],
  ['disk: 100000T', '  disk: 100000T\n', 'disk: "100000T" (102400000 GB) is more than 64T (65536 GB)'],
  ['disk fraction of GB', '  disk: 1.5\n', 'disk: 1.5 is not a whole number of GB ≥ 1 (write e.g. 20 or "20G")'],
];

for (const [name, body, sentence] of BEYOND) {
  test(`x-dstack refuses ${name} in one sentence naming the key, value and limit`, () => {
    const err = failureOf(withOverrides(body), 'APP_XDSTACK_VALUE');
    assert.ok(err.message.includes(`: x-dstack.${sentence}`), err.message);
    assert.doesNotMatch(err.message, /[{}\n]|"code"/, 'no JSON dump, one line');
  });
}
