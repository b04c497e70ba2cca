import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isNoiseEvent } from '../../watchers/ignore.ts';

test('events on editor, backup and tool temp files are noise; apps, secrets and misnamed files are not', () => {
  const table: ReadonlyArray<readonly [string, boolean]> = [
    ['/etc/dstack/apps.d/web.yml', false],
    ['/etc/dstack/apps.d/web.yaml', false],
    ['/etc/dstack/apps.d/web.env', false],
    ['/etc/dstack/apps.d/My_App.yml', false],
    ['/etc/dstack/apps.d/.web.yml.swp', true],
    ['/etc/dstack/apps.d/4913', true],
    ['/etc/dstack/apps.d/web.yml~', true],
    ['/etc/dstack/apps.d/sedAbC123', true],
    ['/etc/dstack/apps.d/web.yml.dpkg-new', true],
    ['/etc/dstack/apps.d/web.yml.disabled', true],
    ['web.yml', false],
    ['.#web.yml', true],
  ];
  for (const [path, noise] of table) assert.equal(isNoiseEvent(path), noise, path);
});
