import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyEntry, describeMisnamed, type IgnoreReason } from '../../src/appsdir/classify.ts';

// Every name docs/apps-dir.md rule 1 lists, and the tool that leaves it behind.
const IGNORED: ReadonlyArray<readonly [string, IgnoreReason, string]> = [
  ['.web.yml', 'hidden', 'dotfile'],
  ['web.yml~', 'backup', 'emacs / vim backup'],
  ['4913', 'temp', "vim's can-I-create-files probe"],
  ['5036', 'temp', "vim's next probe when 4913 exists"],
  ['#web.yml#', 'temp', 'emacs auto-save'],
  ['.#web.yml', 'hidden', 'emacs lock symlink'],
  ['web.yml.bak', 'backup', 'manual backup'],
  ['web.yml.swp', 'backup', 'vim swap without the dot'],
  ['.web.yml.swp', 'hidden', 'vim swap'],
  ['web.yml.dpkg-new', 'package-manager', 'dpkg conffile'],
  ['web.yml.dpkg-old', 'package-manager', 'dpkg conffile'],
  ['web.yml.dpkg-dist', 'package-manager', 'dpkg conffile'],
  ['web.yml.rpmnew', 'package-manager', 'rpm conffile'],
  ['web.yml.rpmsave', 'package-manager', 'rpm conffile'],
  ['web.yml.ucf-dist', 'package-manager', 'ucf'],
  ['.ansible_tmpAB12xweb.yml', 'hidden', 'ansible copy/template temp'],
  ['.chef-web.yml', 'hidden', 'chef file resource temp'],
  ['web.yml20261020-1-ab', 'temp', 'puppet file resource temp'],
  ['web.ymlk3j9x2', 'temp', 'salt file.managed temp'],
  ['sedAbC123', 'temp', 'GNU sed -i temp'],
  ['web.yml.disabled', 'disabled', 'operator switched it off'],
  ['web.yaml.disabled', 'disabled', 'operator switched it off'],
  ['web.env', 'secrets', "the app's secrets file"],
  ['.web.yml.AbC123', 'hidden', 'rsync temp'],
  ['web.yml___jb_tmp___', 'temp', 'JetBrains safe write'],
  ['web.yml.orig', 'backup', 'patch / merge leftover'],
  ['README', 'not-yaml', 'notes beside the apps'],
  ['notes.txt', 'not-yaml', 'notes beside the apps'],
];

test('rule 1: only NAME.yml / NAME.yaml with a valid NAME is an app, named by its identity', () => {
  for (const [file, name] of [
    ['web.yml', 'web'],
    ['web.yaml', 'web'],
    ['a.yml', 'a'],
    ['0.yaml', '0'],
    ['my-app-2.yml', 'my-app-2'],
    ['docker-compose.yml', 'docker-compose'],
    [`${'a'.repeat(63)}.yml`, 'a'.repeat(63)],
  ] as const) {
    assert.deepEqual(classifyEntry(file), { kind: 'app', name }, file);
  }
});

test('rule 1: temp, backup and tool files are silently ignored (table, like chokidar DOT_RE / k3s shouldSkipFile)', () => {
  for (const [file, reason, tool] of IGNORED) {
    assert.deepEqual(classifyEntry(file), { kind: 'ignored', reason }, `${file} (${tool})`);
  }
});

test('rule 2: plausible but invalid names are misnamed, with the problem and a fix', () => {
  const cases = [
    ['My_App.yml', /uppercase/, 'my-app.yml'],
    ['my_app.yml', /contains "_"/, 'my-app.yml'],
    ['my.app.yaml', /contains "\."/, 'my-app.yaml'],
    ['-web.yml', /starts with "-"/, 'web.yml'],
    ['web.YML', /suffix must be lowercase/, 'web.yml'],
    ['web app.yml', /contains " "/, 'web-app.yml'],
    [`${'a'.repeat(64)}.yml`, /64 characters, at most 63/, `${'a'.repeat(63)}.yml`],
    ['__.yml', /contains "_"/, null],
  ] as const;
  for (const [file, problem, suggestion] of cases) {
    const c = classifyEntry(file);
    assert.equal(c.kind, 'misnamed', file);
    if (c.kind !== 'misnamed') continue;
    assert.match(c.problem, problem, file);
    assert.equal(c.suggestion, suggestion, file);
  }
});

test('rule 2: the warning names the file, the rule it broke and how to fix it', () => {
  const c = classifyEntry('My_App.yml');
  assert.equal(c.kind, 'misnamed');
  if (c.kind !== 'misnamed') return;
  const message = describeMisnamed('/etc/dstack/apps.d/My_App.yml', c);
  assert.match(message, /^\/etc\/dstack\/apps\.d\/My_App\.yml: not deployed, /);
  assert.match(message, /apps directory rule 1/);
  assert.match(message, /rename it to "my-app\.yml"/);
});
