// Read gateway.d/gateway.toml (issue 14): no file means Tier 2 is off; a file is checked like an
// app file, parsed, validated, given its base domain and, in ACME mode, its token file checked,
// all before anything is touched. A problem is returned, not thrown: whoever acts on it decides
// what an invalid file holds back (as with an invalid app file: nothing is torn down).
import { dirname } from 'node:path';
import { describeIssues, parseTomlText } from '../toml-config.ts';
import { resolveBaseDomain } from './base-domain.ts';
import { GatewayConfigError } from './errors.ts';
import { readGuarded } from './file-checks.ts';
import { GATEWAY_SECTIONS, gatewayTomlSchema, type GatewayConfig } from './schema.ts';
import { readGatewayToken, type GatewayToken } from './token.ts';

// gateway.toml is a dozen lines; far more is not a gateway.toml.
const GATEWAY_TOML_MAX_BYTES = 64 * 1024;

const UNKNOWN_KEY_FIX = 'remove it or correct its spelling (every key is listed in gateway.d/README and the operator guide)';

export type GatewayLoadOptions = {
  // The uid that must own gateway.toml and the token file ([apps] owner; root in production).
  owner: number;
  // The host's address as the caller knows it: the no-domain base when `public_ip` is not set.
  hostAddress?: string;
};

// Tier 2 off, on with its settings, or refused with the reason.
export type GatewayLoad =
  | { kind: 'off' }
  // `baseDomain`: apps are `<app_id>-<port>.<baseDomain>`; `token`: set in ACME mode only.
  | { kind: 'on'; config: GatewayConfig; baseDomain: string; token: GatewayToken | null }
  | { kind: 'invalid'; error: GatewayConfigError };

function invalid(error: GatewayConfigError): GatewayLoad {
  return { kind: 'invalid', error };
}

// Load the gateway.toml at `file`. Never throws for anything the file or its token file does.
export async function loadGatewayConfig(file: string, opts: GatewayLoadOptions): Promise<GatewayLoad> {
  const read = await readGuarded(file, 'config', opts.owner, GATEWAY_TOML_MAX_BYTES);
  if (read.kind === 'missing') return { kind: 'off' };
  if (read.kind === 'refused') return invalid(new GatewayConfigError(read.refusal.code, file, [read.refusal.text]));
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(read.bytes);
  } catch {
    return invalid(new GatewayConfigError('GATEWAY_CONFIG_INVALID', file, ['is not valid UTF-8; save it as UTF-8']));
  }
  const parsed = parseTomlText(text);
  if (!parsed.ok) return invalid(new GatewayConfigError('GATEWAY_CONFIG_INVALID', `${file}:${parsed.line}:${parsed.column}`, [parsed.problem]));
  const result = gatewayTomlSchema(dirname(file)).safeParse(parsed.value);
  if (!result.success) return invalid(new GatewayConfigError('GATEWAY_CONFIG_INVALID', file, describeIssues(result.error.issues, GATEWAY_SECTIONS, UNKNOWN_KEY_FIX)));
  const config = result.data;
  const base = resolveBaseDomain(config.domain, config.public_ip, opts.hostAddress);
  if ('problem' in base) return invalid(new GatewayConfigError('GATEWAY_CONFIG_INVALID', file, [`public_ip: ${base.problem}`]));
  if (config.certificate.mode === 'self-signed') return { kind: 'on', config, baseDomain: base.domain, token: null };
  const tokenFile = config.certificate.token_file;
  const token = await readGatewayToken(tokenFile, opts.owner);
  if ('refusal' in token) return invalid(new GatewayConfigError(token.refusal.code, file, [`[certificate] token_file: ${tokenFile} ${token.refusal.text}`]));
  return { kind: 'on', config, baseDomain: base.domain, token: token.token };
}
