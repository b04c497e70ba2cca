// Issue 14: an app asks for the gateway with `x-dstack: {gateway: true}`, or every app does under
// gateway.toml `apps = "all"` unless it says `gateway: false`. Its manifest says gateway_enabled
// only while the gateway serves; before that it runs on its direct ports, and one that asked
// explicitly gets a warning (before: gateway_enabled true with no gateway, a failed boot).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildAppSpec, type Tier2 } from '../../src/app/spec.ts';
import { TEST_DEFAULTS } from './helpers.ts';

const COMPOSE = 'services:\n  web:\n    image: nginx\n    ports:\n      - "8080:80"\n';
const withGateway = (flag: boolean) => `${COMPOSE}x-dstack:\n  gateway: ${flag}\n`;
const specOf = (text: string, tier2?: Tier2) => buildAppSpec({ name: 'web', file: 'apps.d/web.yaml', text, defaults: TEST_DEFAULTS, tier2 });
const manifestGateway = (text: string, tier2?: Tier2) => JSON.parse(specOf(text, tier2).manifest).gateway_enabled as boolean;
const gatewayWarnings = (text: string, tier2?: Tier2) => specOf(text, tier2).warnings.filter((w) => w.key === 'x-dstack.gateway');

const ROWS: Array<[string, string, Tier2 | undefined, { wanted: boolean; enabled: boolean; warned: RegExp | undefined }]> = [
  ['no gateway.toml, app silent', COMPOSE, undefined, { wanted: false, enabled: false, warned: undefined }],
  ['no gateway.toml, app asks', withGateway(true), undefined, { wanted: true, enabled: false, warned: /no gateway is configured \(gateway\.d\/gateway\.toml\); the app runs on its direct ports/ }],
  ['opt-in, not serving yet, app asks', withGateway(true), { apps: 'opt-in', serving: false }, { wanted: true, enabled: false, warned: /not serving yet; the app runs on its direct ports/ }],
  ['opt-in, serving, app asks', withGateway(true), { apps: 'opt-in', serving: true }, { wanted: true, enabled: true, warned: undefined }],
  ['opt-in, serving, app silent', COMPOSE, { apps: 'opt-in', serving: true }, { wanted: false, enabled: false, warned: undefined }],
  ['all, serving, app silent', COMPOSE, { apps: 'all', serving: true }, { wanted: true, enabled: true, warned: undefined }],
  ['all, serving, app declines', withGateway(false), { apps: 'all', serving: true }, { wanted: false, enabled: false, warned: undefined }],
  ['all, not serving yet, app silent: no warning for every app', COMPOSE, { apps: 'all', serving: false }, { wanted: true, enabled: false, warned: undefined }],
];

for (const [what, text, tier2, want] of ROWS) {
  test(`gateway in the spec: ${what}`, () => {
    const spec = specOf(text, tier2);
    assert.equal(spec.gatewayWanted, want.wanted, 'gatewayWanted');
    assert.equal(spec.gateway, want.enabled, 'gateway');
    assert.equal(manifestGateway(text, tier2), want.enabled, 'gateway_enabled in the manifest');
    const warned = gatewayWarnings(text, tier2);
    if (want.warned) {
      assert.equal(warned.length, 1);
      assert.match(warned[0]!.message, want.warned);
    } else assert.deepEqual(warned, []);
  });
}

test('switching the gateway on changes the compose hash, and off gives the old one back', () => {
  const off = specOf(withGateway(true), { apps: 'opt-in', serving: false });
  const on = specOf(withGateway(true), { apps: 'opt-in', serving: true });
  assert.notEqual(on.composeHash, off.composeHash);
  assert.equal(specOf(withGateway(true)).composeHash, off.composeHash);
  assert.deepEqual(on.ports, off.ports, 'direct host ports stay');
});
