// Issue 16 item 3: `dstack-supervisor hash FILE --json` reports the compose hash upstream's
// `dstack deploy` gets for the same file, so either tool gives the app the same app id.
//
// How each expectation was derived, by hand, from upstream at 312dc605 (never from src/):
// - dstack/crates/dstack-cli/src/main.rs `cmd_deploy`: reads the file with `fs::read_to_string`
//   (the exact text: BOM, CRLF and all), builds the manifest with
//   `compose::build_app_compose_with_runtime_and_volumes(name, &yaml, !no_kms, "docker-compose",
//   None, &[])`, asks the VMM's `GetComposeHash`, and uses its first 40 hex digits as the app id.
// - dstack/crates/dstack-cli-core/src/compose.rs `build_app_compose_with_runtime_and_volumes`: a
//   `json!` literal with the eleven keys below in this order; gateway_enabled, local_key_provider_enabled,
//   no_instance_id and secure_time false; public_logs and public_sysinfo true; no `allowed_envs`.
//   Optional keys (snapshotter, verity_volumes) are assigned afterwards, so they come last.
// - Key order: dstack/Cargo.lock builds serde_json with indexmap (the `preserve_order` feature), so
//   a Map keeps insertion order rather than sorting keys.
// - Text: `format!("{manifest:#}")`, serde_json's PrettyFormatter: `{`, each key on its own line
//   indented two spaces, `"key": value`, `,` between, `}` with no newline after; an array's items
//   on their own lines indented four. Strings escape only `"` `\` and controls (\t \r \n …); non-ASCII,
//   the BOM and `/` are written as they are.
// - dstack/vmm/src/main_service.rs `get_compose_hash`: hex sha256 of those exact bytes.
// Our additions, for what `dstack deploy` cannot express: NAME.env's names become `allowed_envs`
// (dstack-types AppCompose; missing reads as []), appended after secure_time the way compose.rs
// appends its optional keys, sorted; `x-dstack` public_logs/public_sysinfo write false into
// upstream's own keys. The pinned hashes were cross-checked with Python's
// json.dumps(indent=2, ensure_ascii=False), which formats these values as serde_json does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { defer } from '../helpers/cleanup.ts';

const BIN = join(import.meta.dirname, '../../bin/dstack-supervisor.mjs');
const HELLO = join(import.meta.dirname, '../../examples/hello.yaml');
const run = promisify(execFile);

// The values of one manifest as JSON text, written by hand; the rest is upstream's constants.
type Values = { compose: string; kms?: 'false'; logs?: 'false'; sysinfo?: 'false'; envs?: string };

type Case = {
  // The app name (`dstack deploy -n NAME`; ours is the file name's stem).
  name: string;
  text: string;
  env?: string;
  // The upstream command that builds the same manifest, or why there is none.
  upstream: string;
  values: Values;
  hash: string;
};

// serde_json's pretty text of upstream's manifest for these values.
function expectedText(name: string, v: Values): string {
  const lines = [
    '  "manifest_version": 2',
    `  "name": "${name}"`,
    '  "runner": "docker-compose"',
    `  "docker_compose_file": ${v.compose}`,
    `  "kms_enabled": ${v.kms ?? 'true'}`,
    '  "gateway_enabled": false',
    '  "local_key_provider_enabled": false',
    `  "public_logs": ${v.logs ?? 'true'}`,
    `  "public_sysinfo": ${v.sysinfo ?? 'true'}`,
    '  "no_instance_id": false',
    '  "secure_time": false',
    ...(v.envs === undefined ? [] : [`  "allowed_envs": ${v.envs}`]),
  ];
  return `{\n${lines.join(',\n')}\n}`;
}

const CASES: Case[] = [
  {
    name: 'hello',
    text: await readFile(HELLO, 'utf8'),
    upstream: 'dstack deploy -n hello -c examples/hello.yaml --port 8080:8080 (the file publishes 8080 inside the CVM; the issue quotes 773d25a0… for it)',
    values: {
      compose: String.raw`"# A first app: nginx answering on host port 8080.\n# Copy it into the apps directory; the supervisor deploys it as a CVM.\nservices:\n  web:\n    image: nginx:1.27-alpine\n    ports:\n      - \"8080:80\"\n"`,
    },
    hash: '773d25a0544d5676fd3016c6ffc9a37c0a21981e0943c8ee8033f379bfea4aef',
  },
  {
    name: 'worker',
    text: 'services:\n  worker:\n    image: busybox:1.36\n    command: ["sleep", "infinity"]\n',
    upstream: 'dstack deploy -n worker -c worker.yaml (no port)',
    values: { compose: String.raw`"services:\n  worker:\n    image: busybox:1.36\n    command: [\"sleep\", \"infinity\"]\n"` },
    hash: '68eda449b207ae42726ce0717f6936dc5af03afc847390879b2d7b620f9138f3',
  },
  {
    name: 'batch',
    text: 'services:\n  job:\n    image: python:3.12-slim\n    ports:\n      - "8081:80"\nx-dstack:\n  kms: false\n  vcpu: 4\n  memory: 4G\n  image: dstack-0.5.11\n  ports:\n    - "18081:8081"\n',
    // Size, image and ports are VmConfiguration fields, not manifest keys; the x-dstack text stays
    // in the embedded file, as upstream embeds whatever the file says.
    upstream: 'dstack deploy -n batch -c batch.yaml --no-kms --vcpu 4 --memory 4096 --image dstack-0.5.11 --port 18081:8081',
    values: {
      compose: String.raw`"services:\n  job:\n    image: python:3.12-slim\n    ports:\n      - \"8081:80\"\nx-dstack:\n  kms: false\n  vcpu: 4\n  memory: 4G\n  image: dstack-0.5.11\n  ports:\n    - \"18081:8081\"\n"`,
      kms: 'false',
    },
    hash: '1730872dc3ef0a1110f138e71e5b31141cf205f0ead0dfa4b3bf13d6631e6a06',
  },
  {
    name: 'api',
    text: 'services:\n  api:\n    image: ghcr.io/example/api:2\n    environment:\n      - TOKEN=$TOKEN\n      - DB_PASSWORD=$DB_PASSWORD\n    ports:\n      - "8082:8080"\n',
    env: 'TOKEN=t0k3n\nDB_PASSWORD=hunter2\n',
    upstream: 'none: dstack deploy has no env option; allowed_envs appended after secure_time, sorted, as compose.rs appends optional keys',
    values: {
      compose: String.raw`"services:\n  api:\n    image: ghcr.io/example/api:2\n    environment:\n      - TOKEN=$TOKEN\n      - DB_PASSWORD=$DB_PASSWORD\n    ports:\n      - \"8082:8080\"\n"`,
      envs: '[\n    "DB_PASSWORD",\n    "TOKEN"\n  ]',
    },
    hash: '132c779929510317d7203fde08b6bdc60f97a3e96cd3a625c0416038bef52a35',
  },
  {
    name: 'metrics',
    text: 'services:\n  exporter:\n    image: prom/node-exporter:v1.8.2\n    ports:\n      - "9100:9100"\nx-dstack:\n  public_logs: false\n  public_sysinfo: false\n',
    upstream: 'none: dstack deploy always writes true; x-dstack writes false into the same keys, in place',
    values: {
      compose: String.raw`"services:\n  exporter:\n    image: prom/node-exporter:v1.8.2\n    ports:\n      - \"9100:9100\"\nx-dstack:\n  public_logs: false\n  public_sysinfo: false\n"`,
      logs: 'false',
      sysinfo: 'false',
    },
    hash: '83f16b41b6f05b3d902a4c0d66665fd416a1e98429104363669a9f2224fc7251',
  },
  {
    name: 'intl',
    text: '\uFEFF# café ☕ 日本 —\tnote\r\nservices:\r\n  web:\r\n    image: "nginx:1.27"\r\n    command: \'echo C:\\path\'\r\n    ports:\r\n      - "8083:80"\r\n',
    upstream: 'dstack deploy -n intl -c intl.yaml --port 8083:8083 (read_to_string keeps the BOM and CRLF)',
    values: {
      // The BOM, the non-ASCII letters and the dash are raw; the tab, CR, LF, quotes and backslash escaped.
      compose: '"\uFEFF' + String.raw`# café ☕ 日本 —\tnote\r\nservices:\r\n  web:\r\n    image: \"nginx:1.27\"\r\n    command: 'echo C:\\path'\r\n    ports:\r\n      - \"8083:80\"\r\n"`,
    },
    hash: '68a2ba51316ff278c333229fbedee08510d6c9102fed676c18785f5847aa3c94',
  },
];

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

test('the hand-written manifests are the pinned hashes, and parse back to each file', () => {
  for (const c of CASES) {
    const text = expectedText(c.name, c.values);
    assert.equal(sha256(text), c.hash, c.name);
    assert.equal((JSON.parse(text) as { docker_compose_file: string }).docker_compose_file, c.text, `${c.name}: the value escapes the file's text`);
  }
});

test('issue 16: hash --json gives the compose hash and app id upstream dstack deploy gives (6 files)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'upstream-hash-'));
  defer(t, () => rm(dir, { recursive: true, force: true }));
  const config = join(dir, 'supervisor.toml');
  await writeFile(config, `[apps]\nowner = ${process.getuid?.() ?? 0}\n`);
  const env = { ...process.env };
  delete env['DSTACK_SUPERVISOR_CONFIG'];
  for (const c of CASES) {
    const file = join(dir, `${c.name}.yaml`);
    await writeFile(file, c.text);
    if (c.env !== undefined) await writeFile(join(dir, `${c.name}.env`), c.env, { mode: 0o600 });
    const { stdout } = await run(process.execPath, [BIN, 'hash', file, '--json', '--config', config], { env });
    const out = JSON.parse(stdout) as { compose_hash: string; app_id: string; manifest: string };
    assert.equal(out.manifest, expectedText(c.name, c.values), `${c.name}: ${c.upstream}`);
    assert.equal(out.compose_hash, c.hash, `${c.name}: ${c.upstream}`);
    assert.equal(out.app_id, c.hash.slice(0, 40));
  }
});
