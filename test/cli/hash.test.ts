import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { recordInitStep } from '../../src/init/journal.ts';
import { readEnvFile } from '../../src/secrets/env-file.ts';
import { envDigestKeyPath, openEnvDigester } from '../../src/status/env-digest.ts';
import { manyKeysYaml, mergeAmplifiedYaml } from '../helpers/hostile-yaml.ts';
import { defer } from '../helpers/cleanup.ts';

const BIN = join(import.meta.dirname, '../../bin/dstack-supervisor.mjs');
const FIXTURES = join(import.meta.dirname, '../fixtures/compose');
const MAN_PAGE = join(import.meta.dirname, '../../packaging/files/dstack-supervisor.8');
const run = promisify(execFile);

type Result = { code: number; stdout: string; stderr: string };

// Run the real CLI as a child process; a non-zero exit is a result, not a throw.
async function hash(args: string[]): Promise<Result> {
  const env = { ...process.env };
  delete env['DSTACK_SUPERVISOR_CONFIG'];
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, 'hash', ...args], { env });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

type Setup = { dir: string; config: string; file: string };
type Content = { fixture?: string; text?: string; toml?: string };
type TestContext = { after: (fn: () => Promise<void>) => void };

// A temp dir holding supervisor.toml (`toml`) and a compose file `name` (a fixture's copy, or `text`).
async function setUp(t: TestContext, name: string, content: Content): Promise<Setup> {
  const dir = await mkdtemp(join(tmpdir(), 'hash-cli-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  const config = join(dir, 'supervisor.toml');
  await writeFile(config, content.toml ?? '');
  const file = join(dir, name);
  if (content.fixture) await copyFile(join(FIXTURES, content.fixture), file);
  else await writeFile(file, content.text ?? '');
  return { dir, config, file };
}

test('hash --json prints one object whose manifest hashes to compose_hash', async (t) => {
  const { config, file } = await setUp(t, 'shop.yaml', { fixture: 'unicode.yaml', toml: '[apps]\nport_address = "0.0.0.0"\n' });
  const { code, stdout, stderr } = await hash([file, '--json', '--config', config]);
  assert.equal(code, 0, stderr);
  const out = JSON.parse(stdout);
  assert.deepEqual(Object.keys(out).sort(), ['app_id', 'compose_hash', 'env_digest', 'gpus', 'manifest', 'name', 'ports', 'warnings']);
  assert.equal(out.env_digest, null, 'no NAME.env: no env_digest');
  assert.equal(out.gpus, null, 'no x-dstack.gpus: null, not absent');
  assert.equal(out.name, 'shop');
  assert.equal(out.compose_hash, createHash('sha256').update(out.manifest, 'utf8').digest('hex'));
  assert.equal(out.app_id, out.compose_hash.slice(0, 40));
  assert.deepEqual(out.ports, [{ protocol: 'tcp', host_port: 8084, vm_port: 8084, host_address: '0.0.0.0' }]);
  assert.deepEqual(out.warnings, []);
  assert.equal(JSON.parse(out.manifest).name, 'shop');
});

test('hash shows the GPUs an app asks for (x-dstack.gpus): all, a count, or its PCI addresses in sysfs form', async (t) => {
  const gpuCompose = (gpus: string) =>
    'services:\n  llm:\n    image: vllm/vllm-openai:v0.6.6\n    deploy:\n      resources:\n        reservations:\n' +
    `          devices:\n            - driver: nvidia\n              count: all\n              capabilities: [gpu]\nx-dstack:\n  gpus: ${gpus}\n`;
  const cases: Array<[string, unknown, string]> = [
    ['all', 'all', 'all GPUs'],
    ['2', 2, '2 GPUs'],
    ['["18:00.0", "0000:2A:00.0"]', ['0000:18:00.0', '0000:2a:00.0'], 'GPUs 0000:18:00.0, 0000:2a:00.0'],
  ];
  for (const [written, json, text] of cases) {
    const { config, file } = await setUp(t, 'llm.yaml', { text: gpuCompose(written) });
    const asJson = await hash([file, '--json', '--config', config]);
    assert.equal(asJson.code, 0, asJson.stderr);
    const out = JSON.parse(asJson.stdout);
    assert.deepEqual(out.gpus, json, written);
    assert.deepEqual(out.warnings, [], written);
    const asText = await hash([file, '--config', config]);
    assert.ok(asText.stdout.includes(`\ngpus          ${text}\n`), asText.stdout);
  }
});

test('every key of hash --json is named in the man page entry for hash', async (t) => {
  const { config, file } = await setUp(t, 'shop.yaml', { fixture: 'xdstack.yaml' });
  const { code, stdout, stderr } = await hash([file, '--json', '--config', config]);
  assert.equal(code, 0, stderr);
  const man = await readFile(MAN_PAGE, 'utf8');
  const entry = man.slice(man.indexOf('.B hash\n'), man.indexOf('.B init\n'));
  const named = (key: string) => new RegExp(`^\\.BR? (?:.*[ ,])?${key}(?:[ ,]|$)`, 'm').test(entry);
  assert.deepEqual(Object.keys(JSON.parse(stdout)).filter((key) => !named(key)), []);
});

test('hash prints name, app id, hash, ports and the manifest as text', async (t) => {
  const { config, file } = await setUp(t, 'web.yml', { fixture: 'no-host-port.yaml' });
  const { code, stdout } = await hash([file, '--config', config]);
  assert.equal(code, 0);
  assert.match(stdout, /^name {10}web\n/);
  assert.match(stdout, /\napp id {8}[0-9a-f]{40}\n/);
  assert.match(stdout, /\ncompose hash {2}[0-9a-f]{64}\n/);
  assert.match(stdout, /\nports {9}tcp 127\.0\.0\.1:8092 -> CVM 8092\n/);
  assert.match(stdout, /\ngpus {10}\(none\)\n/);
  assert.match(stdout, /\nwarnings {6}service web: ports: "80" has no host port/);
  assert.match(stdout, /\nmanifest\n\{\n {2}"manifest_version": 2,/);
});

test('an invalid file exits 1 with the file and line on stderr', async (t) => {
  const { config, file } = await setUp(t, 'bad.yaml', { text: 'services:\n  web:\n    ports: ["8080:80", "8080:81"]\n' });
  const { code, stdout, stderr } = await hash([file, '--config', config]);
  assert.equal(code, 1);
  assert.equal(stdout, '');
  assert.ok(stderr.startsWith(`dstack-supervisor hash: ${file}:3:24: services.web.ports[1]: host port 8080/tcp is published twice`), stderr);
});

test('a file name that breaks the app-name rule exits 1 and says so', async (t) => {
  const { config, file } = await setUp(t, 'My_App.yaml', { text: 'services:\n  web: {image: nginx}\n' });
  const { code, stderr } = await hash([file, '--config', config]);
  assert.equal(code, 1);
  assert.match(stderr, /app name "My_App" breaks the rule/);
});

test('a missing file exits 1; missing arguments exit 2 with usage', async (t) => {
  const { dir, config } = await setUp(t, 'unused.yaml', {});
  const missing = await hash([join(dir, 'nope.yaml'), '--config', join(dir, 'nope.toml')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nope\.toml: no such file/);
  const unreadable = await hash([join(dir, 'nope.yaml'), '--config', config]);
  assert.equal(unreadable.code, 1);
  assert.match(unreadable.stderr, /nope\.yaml: cannot read the compose file/);
  const usage = await hash([]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /Usage: dstack-supervisor hash FILE/);
});

test('a refused file exits 1 with every refusal and warning on stderr', async (t) => {
  const text = 'services:\n  web:\n    build: .\n    volumes: ["./conf:/etc/app"]\n    ports: ["8080:80"]\n';
  const { config, file } = await setUp(t, 'app.yaml', { text });
  const { code, stdout, stderr } = await hash([file, '--json', '--config', config]);
  assert.equal(code, 1);
  assert.equal(stdout, '');
  const refusal = `${file}:3:12: cannot run in a CVM as written: service web: build: has \`build:\` but no \`image:\``;
  assert.ok(stderr.startsWith(`dstack-supervisor hash: ${refusal}`), stderr);
  assert.match(stderr, /\nwarning: service web: volumes: bind-mounts \.\/conf from the host/);
});

test('hash --json lists warnings as {service, key, message}', async (t) => {
  const { config, file } = await setUp(t, 'app.yaml', { fixture: 'no-host-port.yaml' });
  const { code, stdout } = await hash([file, '--json', '--config', config]);
  assert.equal(code, 0);
  const { warnings } = JSON.parse(stdout);
  assert.equal(warnings.length, 5);
  for (const w of warnings) assert.deepEqual(Object.keys(w), ['service', 'key', 'message']);
});

test('hash takes NAME.env into account: its key names are in allowed_envs, no value is printed', async (t) => {
  const secret = 'hash-cli-secret-value-91';
  const { dir, config, file } = await setUp(t, 'shop.yaml', { text: 'services:\n  web:\n    image: nginx\n' });
  await writeFile(config, `state_dir = "${join(dir, 'state')}"\n[apps]\nowner = ${process.getuid?.() ?? 0}\n`);
  await writeFile(join(dir, 'shop.env'), `DB_PASSWORD=${secret}\nAPI_KEY=${secret}\n`, { mode: 0o600 });
  const result = await hash([file, '--json', '--config', config]);
  assert.equal(result.code, 0, result.stderr);
  const out = JSON.parse(result.stdout) as { manifest: string; env_digest: string | null };
  assert.deepEqual(JSON.parse(out.manifest).allowed_envs, ['API_KEY', 'DB_PASSWORD']);
  assert.ok(!result.stdout.includes(secret) && !result.stderr.includes(secret));
  // Before the service made its key, hash has no env_digest to give, and changes nothing.
  assert.equal(out.env_digest, null);
  assert.match(result.stderr, /warning: no \S+env-digest\.key yet .*env_digest is null/);
  assert.equal(existsSync(envDigestKeyPath(join(dir, 'state'))), false);
});

// Issue 17: a tool that changed only values waits for the status's env_digest to equal this.
test('hash --json gives the env_digest the service will report for NAME.env, keyed, changing with any value', async (t) => {
  const { dir, config, file } = await setUp(t, 'shop.yaml', { text: 'services:\n  web:\n    image: nginx\n' });
  const state = join(dir, 'state');
  await writeFile(config, `state_dir = "${state}"\n[apps]\nowner = ${process.getuid?.() ?? 0}\n`);
  const service = await openEnvDigester(state);
  assert.equal((await stat(envDigestKeyPath(state))).mode & 0o777, 0o600);
  const digestOf = async (value: string) => {
    await writeFile(join(dir, 'shop.env'), `PIN=${value}\n`, { mode: 0o600 });
    const result = await hash([file, '--json', '--config', config]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    return (JSON.parse(result.stdout) as { env_digest: string }).env_digest;
  };
  const one = await digestOf('1234');
  assert.match(one, /^[0-9a-f]{64}$/);
  const env = await readEnvFile(file, { owner: process.getuid?.() ?? 0 });
  assert.equal(one, service(env!.valuesHash), 'what the service reports for these values');
  // Not the plain sha256 the state record keeps: a 4-digit PIN cannot be found from it without the key.
  assert.notEqual(one, env!.valuesHash);
  assert.notEqual(await digestOf('1235'), one);
  assert.equal(await digestOf('1234'), one);
  assert.equal((await openEnvDigester(state))(env!.valuesHash), one, 'the key is made once and kept');
  const elsewhere = await openEnvDigester(join(dir, 'other-host'));
  assert.notEqual(elsewhere(env!.valuesHash), one, 'another host, another key');
});

// Issue 13 item 5: `hash` refuses what the supervisor refuses, in the same sentence.
test('a size no CVM can have exits 1 with one sentence naming the key, the value and the limit', async (t) => {
  const text = 'services:\n  web:\n    image: nginx\nx-dstack:\n  memory: 9999999G\n';
  const { config, file } = await setUp(t, 'big.yaml', { text });
  const { code, stdout, stderr } = await hash([file, '--config', config]);
  assert.equal(code, 1);
  assert.equal(stdout, '');
  assert.equal(
    stderr,
    `dstack-supervisor hash: ${file}:5:11: x-dstack.memory: "9999999G" (10239998976 MB) is more than 64T (67108864 MB), the most a CVM can have; give at most 64T\n`,
  );
});

test('a host port init gave the KMS, or one below 1024, exits 1 naming its owner or the key that allows it', async (t) => {
  const { dir, config, file } = await setUp(t, 'kms.yaml', { text: 'services:\n  web:\n    image: nginx\n    ports: ["9201:80"]\n' });
  const stateDir = join(dir, 'state');
  await writeFile(config, `state_dir = "${stateDir}"\n[apps]\nprivileged_ports = [80]\n`);
  await recordInitStep(stateDir, 'render', { kms_port: 9201 }, () => 0);
  const kms = await hash([file, '--config', config]);
  assert.equal(kms.code, 1);
  assert.match(kms.stderr, /kms\.yaml:4:13: services\.web\.ports\[0\]: service web \("9201:80"\): host port 9201\/tcp is the KMS's \(init\); publish the app on another port\n$/);
  await writeFile(file, 'services:\n  web:\n    image: nginx\n    ports: ["80:80", "1-1024:1-1024"]\n');
  const low = await hash([file, '--config', config]);
  assert.equal(low.code, 1);
  assert.match(low.stderr, /host port 1\/tcp is below 1024, .*or add 1 to supervisor\.toml \[apps\] privileged_ports \(now 80\)\n$/);
});

test('files costly to parse exit 1 with the limit they pass (issue 13)', async (t) => {
  const cases = [
    ['junk.yaml', manyKeysYaml(50_000), /^dstack-supervisor hash: \S+junk\.yaml:\d+:\d+: has more than 20000 YAML nodes \(keys, values and list items/],
    ['bomb.yaml', mergeAmplifiedYaml(5_000, 99), /^dstack-supervisor hash: \S+bomb\.yaml:\d+:\d+: expands to \d+ YAML nodes .*past the limit of 100000; this looks like an alias bomb/],
  ] as const;
  for (const [name, text, message] of cases) {
    const { config, file } = await setUp(t, name, { text });
    const { code, stdout, stderr } = await hash([file, '--config', config]);
    assert.equal(code, 1, name);
    assert.equal(stdout, '');
    assert.match(stderr, message);
  }
});

test('a file over [apps] max_file_bytes exits 1 before it is parsed, as the supervisor refuses it', async (t) => {
  const text = manyKeysYaml(50_000);
  const { config, file } = await setUp(t, 'big.yaml', { text, toml: '[apps]\nmax_file_bytes = 4096\n' });
  const { code, stderr } = await hash([file, '--config', config]);
  assert.equal(code, 1);
  assert.equal(stderr, `dstack-supervisor hash: ${file}: is ${text.length} bytes, over the 4096-byte limit ([apps] max_file_bytes); shrink it or raise the limit\n`);
});
