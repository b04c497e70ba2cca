// docs/apps-dir.md rules 1–4, "What is an app", end to end: a real apps.d, the supervisor in-process, the
// simulated VMM. Where a rule names a tool (chown, chmod, ln, mv, rm) the test runs the real one.
// "Nothing happened" is asserted after h.checkpoint(): a later app deployed, so every earlier
// change has been settled and planned; its own deploy is the one CreateVm allowed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { startHarness, composeText, composeOf, freePort, waitUntil, type Harness } from '../helpers/harness.ts';
import { startWithApp, assertUntouched, statusOf, rescan } from '../helpers/rules.ts';

// Every name docs/apps-dir.md rule 1 lists as "not an app", each one a tool's or an editor's leftover.
const NOT_APPS = [
  '.x.yml', 'x.yml~', '4913', '#x.yml#', '.#x.yml', 'x.yml.bak', 'x.yml.swp', 'x.yml.dpkg-new', 'x.yml.dpkg-old',
  'x.yml.rpmnew', 'x.yml.rpmsave', 'x.yml.ucf-dist', '.ansible_tmpAB12x.yml', '.chef-x1.yml', 'x.yml20261020-1-ab',
  'x.ymlk3j9x2', 'sedAbC123', 'x.yml.disabled', 'x.env',
];

const TWO_MIB = 2 * 1024 * 1024;

// A valid compose file of more than 2 MiB: the size alone is what is wrong with it.
const hugeCompose = (port: number) => `${composeText(port, 'huge')}${'# padding\n'.repeat(TWO_MIB / 10)}`;

// The warning lines (journald priority 4 or louder) that mention `text`.
const warningsAbout = (h: Harness, text: string) =>
  h.logs.filter((l) => l.priority <= 4 && JSON.stringify(l.fields).includes(text));

test('rule 1: temp, backup, tool and disabled names, subdirectories and a 2 MiB file never deploy', async (t) => {
  const h = await startHarness(t);
  await h.start();
  for (const name of NOT_APPS) await h.put(name, composeText(await freePort(), name));
  // A directory named like an app, an app file one level down, and an app file over 1 MiB.
  await mkdir(h.path('sub.yml'));
  await mkdir(h.path('nested'));
  await writeFile(join(h.path('nested'), 'nested.yml'), composeText(await freePort(), 'nested'));
  await h.put('big.yml', hugeCompose(await freePort()));
  // Written last: once it runs, every file above has been seen and settled.
  const text = composeText(await freePort(), 'app');
  await h.put('app.yaml', text);
  await h.deployed('app', text);
  await rescan(h);

  assert.deepEqual(h.sim.state.list().map((v) => v.name), ['app'], 'the identity is the name without ".yaml"');
  assert.deepEqual(h.mutations(), ['CreateVm']);
  // A refusal is decided when its entry has settled, on its own schedule: app.yaml can run first
  // (about one run in four, the directory was still pending at this point).
  const refusal = (name: string) => waitUntil(() => h.decisions(name, 'refused')[0], `${name} refused`);
  assert.match(String((await refusal('sub')).fields.REASON), /is a directory; an app must be a regular file/);
  assert.match(String((await refusal('big')).fields.REASON), /over the 1048576-byte limit/);
  assert.deepEqual(h.mutations(), ['CreateVm'], 'nothing else was deployed meanwhile');
  for (const name of NOT_APPS) assert.deepEqual(warningsAbout(h, name), [], `${name} is skipped silently`);
});

test('rule 1: names that are not apps never touch or tear down the running app beside them', async (t) => {
  const { h, vm, port, text } = await startWithApp(t);
  // Each leftover carries other content on the same port: acting on any of them would show.
  let mark = h.mutations().length;
  for (const name of NOT_APPS) await h.put(name, composeText(port, `leftover ${name}`));
  await assertUntouched(h, mark, vm, text);
  mark = h.mutations().length;
  for (const name of NOT_APPS) await execa('rm', ['--', h.path(name)]);
  await assertUntouched(h, mark, vm, text);
  assert.deepEqual(h.decisions('x', 'teardown'), []);
});

test('rule 1: a file grown past 1 MiB is refused and its app keeps running', async (t) => {
  const { h, vm, port, text } = await startWithApp(t);
  const mark = h.mutations().length;
  await writeFile(h.path('x.yml'), hugeCompose(port));
  const status = await statusOf(h, 'x', 'invalid');
  assert.match(String(status.last_error), /x\.yml: is \d+ bytes, over the 1048576-byte limit/);
  const [refusal, ...more] = h.decisions('x', 'refused');
  assert.equal(refusal?.priority, 4, 'a refusal is a warning');
  assert.deepEqual(more, []);
  await assertUntouched(h, mark, vm, text);

  // Shrunk again (to new content), the file is an app again: an upgrade, not a redeploy.
  const v2 = composeText(port, 'v2');
  await h.put('x.yml', v2);
  assert.equal((await h.deployed('x', v2)).id, vm.id);
});

test('rule 2: a misnamed file gets one warning naming the rule; temp and backup names stay silent', async (t) => {
  const h = await startHarness(t);
  await h.start();
  const misnamed: Record<string, RegExp> = {
    'My_App.yml': /uppercase letters.*apps directory rule 1.*rename it to "my-app\.yml"/,
    'web.YML': /suffix must be lowercase/,
    '-web.yml': /starts with "-"/,
    'web app.yaml': /contains " "; only a-z, 0-9 and "-" are allowed.*rename it to "web-app\.yaml"/,
    [`${'a'.repeat(64)}.yml`]: /has 64 characters, at most 63/,
  };
  const texts = new Map<string, string>();
  for (const name of Object.keys(misnamed)) {
    texts.set(name, composeText(await freePort(), name));
    await h.put(name, texts.get(name) as string);
  }
  for (const name of NOT_APPS) await h.put(name, composeText(await freePort(), name));
  await h.checkpoint();
  // More scans see the same names; the warning is not repeated.
  for (let i = 0; i < 3; i += 1) await rescan(h);
  for (const [name, why] of Object.entries(misnamed)) {
    const lines = warningsAbout(h, name);
    assert.equal(lines.length, 1, `exactly one warning for ${name}`);
    assert.equal(lines[0]?.priority, 4);
    assert.match(String(lines[0]?.fields.msg), why);
  }
  for (const name of NOT_APPS) assert.deepEqual(warningsAbout(h, name), [], `${name} is skipped silently`);
  assert.deepEqual(h.sim.state.list().map((v) => v.name), ['checkpoint-1'], 'no misnamed file deployed');

  // Renamed as the warning says (real mv), it deploys under the fixed name.
  await execa('mv', [h.path('My_App.yml'), h.path('my-app.yml')]);
  await h.deployed('my-app', texts.get('My_App.yml'));
});

test('rule 3: web.yml beside a running web.yaml blocks both, reports both, and the app keeps running', async (t) => {
  const h = await startHarness(t);
  await h.start();
  const port = await freePort();
  const v1 = composeText(port, 'v1');
  await h.put('web.yaml', v1);
  const vm = await h.deployed('web', v1);
  const mark = h.mutations().length;

  const v2 = composeText(port, 'v2');
  await h.put('web.yml', v2);
  const status = await statusOf(h, 'web', 'invalid');
  assert.match(String(status.last_error), /web\.yaml and .*web\.yml both define app "web"/);
  await assertUntouched(h, mark, vm, v1);
  await rescan(h);
  const conflicts = h.decisions('web', 'conflict');
  assert.equal(conflicts.length, 1, 'reported once while it lasts, not once per scan');
  assert.equal(conflicts[0]?.priority, 4);
  assert.match(String(conflicts[0]?.fields.FILE), /web\.yaml, .*web\.yml$/);
  assert.equal((await h.statuses()).find((s) => s.app === 'web')?.phase, 'invalid', 'still reported');

  // One of them goes (real rm): the other is the app, an upgrade of the same VM.
  await execa('rm', [h.path('web.yaml')]);
  assert.equal((await h.deployed('web', v2)).id, vm.id);
  assert.equal(h.mutations().includes('RemoveVm'), false, 'never torn down');
  assert.equal((await h.statuses()).find((s) => s.app === 'web')?.last_error, null);
});

test('rule 3: web.yml and web.yaml dropped together: neither deploys until one goes', async (t) => {
  const h = await startHarness(t);
  await h.start();
  const port = await freePort();
  await h.put('web.yml', composeText(port, 'yml'));
  await h.put('web.yaml', composeText(port, 'yaml'));
  await h.checkpoint();
  assert.deepEqual(h.sim.state.list().map((v) => v.name), ['checkpoint-1']);
  assert.match(String(h.decisions('web', 'conflict')[0]?.fields.REASON), /web\.yaml and .*web\.yml both define app "web"/);

  await execa('rm', [h.path('web.yml')]);
  await h.deployed('web', composeText(port, 'yaml'));
});

test('rule 4: a file owned by another uid is refused and the running app keeps running', async (t) => {
  const { h, vm, port, text } = await startWithApp(t);
  const mark = h.mutations().length;
  // New content, written and chowned beside the app, then moved over it (real chown and mv).
  const v2 = composeText(port, 'v2');
  await writeFile(h.path('tmp'), v2);
  await execa('chown', ['4242', h.path('tmp')]);
  await execa('mv', [h.path('tmp'), h.path('x.yml')]);
  await h.put('other.yml', composeText(await freePort(), 'other'));
  await execa('chown', ['4242', h.path('other.yml')]);

  const status = await statusOf(h, 'x', 'invalid');
  assert.match(String(status.last_error), /x\.yml: owned by uid 4242, but app files must be owned by uid \d+/);
  await assertUntouched(h, mark, vm, text);
  assert.equal(h.decisions('x', 'refused')[0]?.priority, 4);
  assert.match(String(h.decisions('other', 'refused')[0]?.fields.REASON), /owned by uid 4242/);
  assert.equal(h.sim.state.list().some((v) => v.name === 'other'), false, 'never deployed');

  // Given back to the configured owner, the new content lands.
  await execa('chown', [String(h.config.apps.owner), h.path('x.yml')]);
  assert.equal((await h.deployed('x', v2)).id, vm.id);
});

test('rule 4: a group- or world-writable file is refused and the running app keeps running', async (t) => {
  const { h, vm, port, text } = await startWithApp(t);
  const mark = h.mutations().length;
  await execa('chmod', ['g+w', h.path('x.yml')]);
  // Edited while group-writable: exactly what the rule protects against.
  const v2 = composeText(port, 'v2');
  await writeFile(h.path('x.yml'), v2);
  await h.put('open.yml', composeText(await freePort(), 'open'));
  await execa('chmod', ['o+w', h.path('open.yml')]);

  const status = await statusOf(h, 'x', 'invalid');
  assert.match(String(status.last_error), /x\.yml: is group- or world-writable \(mode 0664\).*chmod go-w/);
  await assertUntouched(h, mark, vm, text);
  assert.match(String(h.decisions('open', 'refused')[0]?.fields.REASON), /mode 0646/);
  assert.equal(h.sim.state.list().some((v) => v.name === 'open'), false, 'never deployed');

  await execa('chmod', ['go-w', h.path('x.yml')]);
  assert.equal((await h.deployed('x', v2)).id, vm.id);
});

test('rule 4: a symlink resolving outside apps.d is refused; one resolving inside is an app', async (t) => {
  const { h, vm, port, text } = await startWithApp(t);
  const mark = h.mutations().length;
  const outside = join(h.dir, 'outside.yml');
  await writeFile(outside, composeText(port, 'outside'));
  await execa('ln', ['-sf', outside, h.path('x.yml')]);
  await execa('ln', ['-s', '../outside.yml', h.path('out.yml')]);
  // Inside: a link to a file in a subdirectory of apps.d (the subdirectory itself is no app).
  await mkdir(h.path('store'));
  const inside = composeText(await freePort(), 'inside');
  await writeFile(join(h.path('store'), 'inside.compose'), inside);
  await execa('ln', ['-s', 'store/inside.compose', h.path('in.yml')]);

  await h.deployed('in', inside);
  const status = await statusOf(h, 'x', 'invalid');
  assert.match(String(status.last_error), /x\.yml: is a symlink to .*outside\.yml, outside the apps directory/);
  assert.match(String(h.decisions('out', 'refused')[0]?.fields.REASON), /outside the apps directory/);
  assert.deepEqual(h.mutations().slice(mark), ['CreateVm'], 'only "in" was deployed');
  assert.deepEqual(h.sim.state.list().map((v) => v.name).sort(), ['in', 'x']);
  const x = h.sim.state.list().find((v) => v.name === 'x');
  assert.equal(x?.id, vm.id);
  assert.equal(composeOf(x!), text, 'x keeps running what it ran');
});

test('rule 4 (issue 13 item 6): a hard link to a root-only file outside apps.d is refused, and so is a hard-linked NAME.env; the app beside them deploys', async (t) => {
  const h = await startHarness(t);
  await h.start();
  const outside = join(h.dir, 'root-only.yml');
  const linkedText = composeText(await freePort(), 'outside');
  await writeFile(outside, linkedText, { mode: 0o600 });
  await execa('ln', [outside, h.path('linked.yml')]);
  // A secrets file kept elsewhere, hard-linked in beside an otherwise good app.
  const secrets = join(h.dir, 'shop-secrets');
  await writeFile(secrets, 'API_KEY=abc\n', { mode: 0o600 });
  await execa('ln', [secrets, h.path('shop.env')]);
  await h.put('shop.yml', composeText(await freePort(), 'shop'));
  const normal = composeText(await freePort(), 'normal');
  await h.put('normal.yml', normal);

  await h.deployed('normal', normal);
  const linked = await statusOf(h, 'linked', 'invalid');
  assert.match(String(linked.last_error), /linked\.yml: has 2 names \(it is hard-linked\).*copy the file instead of hard-linking it/);
  assert.equal(h.decisions('linked', 'refused')[0]?.priority, 4);
  const shop = await statusOf(h, 'shop', 'invalid');
  assert.match(String(shop.last_error), /shop\.env: has 2 names \(it is hard-linked\)/);
  await rescan(h);
  assert.deepEqual(h.sim.state.list().map((v) => v.name), ['normal'], 'nothing hard-linked is deployed');
  assert.deepEqual(h.mutations(), ['CreateVm']);

  // Replaced by a copy, as the message says (real cp and mv), the same bytes deploy.
  await execa('sh', ['-c', `cp ${h.path('linked.yml')} ${h.path('linked.yml')}.tmp && mv ${h.path('linked.yml')}.tmp ${h.path('linked.yml')}`]);
  await h.deployed('linked', linkedText);
});
